/*
 * task: the task model and THE one transition function that owns a task's
 * life: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED, with RUNNING ->
 * PENDING on worker loss, failure or timeout (the next assignment is attempt
 * + 1, after an exponential backoff for failures and timeouts) until
 * max_attempts, then FAILED with an error saying so. Everything else asks
 * task_transition(); nothing else writes status, attempt or the timestamps.
 *
 * The module owns struct task's memory and its rules. It does not own queue
 * positions (queue.h), persistence (store.h) or the wire form (the scheduler
 * converts to and from orchestrator.v1 messages). No I/O; illegal events are
 * logged through log.h and rejected.
 */
#ifndef ORCHD_TASK_H
#define ORCHD_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "id.h"

/* Values equal orchestrator.v1.TaskStatus, so converting is a cast. */
enum task_state {
	TASK_UNSPECIFIED = 0,
	TASK_PENDING = 1,
	TASK_RUNNING = 2,
	TASK_COMPLETED = 3,
	TASK_FAILED = 4,
	TASK_CANCELLED = 5,
};

enum task_event {
	TASK_EV_ASSIGN,      /* the scheduler hands the task to a worker */
	TASK_EV_COMPLETE,    /* the worker reports success */
	TASK_EV_FAIL,        /* the worker reports failure (retried unless no_retry) */
	TASK_EV_WORKER_LOST, /* the worker died, went silent or its stream broke */
	TASK_EV_TIMEOUT,     /* the scheduler's lease on the attempt expired */
	TASK_EV_CANCEL,      /* a client asks to cancel */
	TASK_EV_CANCELLED,   /* the worker reports it stopped the task */
};

struct task_label {
	char *key;
	char *value;
};

/*
 * A task. Strings marked "NULL = empty" are NULL rather than "" to keep the
 * million-pending-tasks case small. All pointers are owned by the task and
 * freed by task_del(); set them with task_set_*() or the xalloc wrappers.
 */
struct task {
	char id[ID_LEN + 1];
	/* The spec, fixed at submit. */
	char *name;        /* never NULL */
	char *description; /* NULL = empty */
	uint8_t *payload;  /* payload_len bytes; NULL when 0 */
	size_t payload_len;
	int32_t priority;      /* higher first */
	int32_t max_attempts;  /* <= 0: the policy's default */
	int64_t timeout_ms;    /* per attempt; 0 = none */
	char *idempotency_key; /* NULL = none */
	struct task_label *labels;
	size_t nlabels;

	/* Durable state, written by task_transition() only. */
	enum task_state status;
	int32_t attempt;       /* 1-based current/last attempt; 0 = never run */
	int64_t created_ms;    /* Unix ms; set by the creator */
	int64_t started_ms;    /* start of the current/last attempt */
	int64_t finished_ms;   /* when it became final; 0 until then */
	int64_t not_before_ms; /* PENDING: not assignable before this (backoff) */
	int64_t deadline_ms;   /* RUNNING: lease end (started + timeout); 0 = none */
	uint8_t *output;       /* result output; NULL when 0 */
	size_t output_len;
	char *error;          /* last error, or the final one; NULL = empty */
	char *worker_id;      /* current/last worker; NULL = none */
	int cancel_requested; /* RUNNING: the worker has been told to stop */

	/* In memory only. */
	int32_t percent; /* progress of the running attempt, 0..100 */
	char *message;   /* its latest progress message; NULL = empty */
	uint64_t seq;    /* FIFO order within a priority (queue.h) */
	uint32_t qidx;   /* position in its queue heap (queue.h) */
	uint8_t qwhere;  /* which heap holds it, 0 = none (queue.h) */
};

/* Retry rules. */
struct task_policy {
	int32_t default_max_attempts; /* when a task says <= 0 */
	int64_t backoff_base_ms;      /* delay before attempt 2 */
	int64_t backoff_max_ms;       /* delays double up to this */
};

/* 3 attempts, 500 ms doubling up to 30 s. */
extern const struct task_policy task_policy_default;

/* What came with an event; every field is optional (0/NULL). */
struct task_ev {
	/* ASSIGN: the worker (copied). Others: when set, the event must come
	 * from the task's current worker, else it is stale and rejected. */
	const char *worker_id;
	/* COMPLETE, FAIL, CANCELLED: the attempt the worker reports; when
	 * non-zero it must be the current one, else the event is stale. */
	int32_t attempt;
	/* COMPLETE, FAIL, CANCELLED: the handler's output (copied). */
	const void *output;
	size_t output_len;
	/* FAIL: the error; CANCEL: the reason; WORKER_LOST, TIMEOUT: a detail
	 * (copied). */
	const char *error;
	/* FAIL: do not retry, fail now. */
	int no_retry;
	/* Retry rules (borrowed); NULL = task_policy_default. */
	const struct task_policy *policy;
};

/* Returns a new PENDING task with the given id and name (both copied; id
 * NULL = generate one with id_new()), created at now_ms. Free with
 * task_del(). */
struct task *task_new(const char *id, const char *name, int64_t now_ms);
/* Frees t and everything it owns; NULL is a no-op. The task must not be in
 * a queue. */
void task_del(struct task *t);
/* Returns a deep copy of t, out of any queue; free with task_del(). */
struct task *task_clone(const struct task *t);

/* Replace *field with a copy of s (NULL or "" stores NULL). */
void task_set_str(char **field, const char *s);
/* Replace a byte field with a copy of n bytes of p (n == 0 stores NULL). */
void task_set_bytes(uint8_t **field, size_t *len, const void *p, size_t n);
/* Appends a label; key and value are copied. */
void task_add_label(struct task *t, const char *key, const char *value);
/* Returns the label's value (borrowed from t), or NULL. */
const char *task_label(const struct task *t, const char *key);

/*
 * Applies ev to t at now_ms. This is the only place task states change.
 * Returns the new status (a positive enum task_state) on success; the status
 * can be unchanged: CANCEL on a RUNNING task returns TASK_RUNNING with
 * t->cancel_requested set, meaning "tell the worker to stop" (the task ends
 * CANCELLED when the worker confirms, or when it is lost or times out).
 * FAIL, TIMEOUT and WORKER_LOST return TASK_PENDING when the task will be
 * retried (after t->not_before_ms) or TASK_FAILED when its attempts are
 * exhausted. COMPLETE after a cancel request still completes (the work was
 * done); FAIL after one ends CANCELLED.
 * Returns E_STATE (t unchanged, a warning logged) for an event that is
 * illegal in t's state or stale (another worker or attempt), and -EINVAL for
 * an unknown event.
 */
int task_transition(struct task *t, enum task_event ev, const struct task_ev *e, int64_t now_ms);

/* Records progress of the running attempt: percent clamped to 0..100 and
 * never lowered within an attempt; message copied (NULL keeps the old one).
 * Returns 1 if anything changed, 0 if not, E_STATE if t is not RUNNING or
 * attempt (when non-zero) is not the current one. Progress is not durable. */
int task_progress(struct task *t, int32_t attempt, int32_t percent, const char *message);

/* Returns the delay before the attempt after `attempt` failed: base *
 * 2^(attempt-1), at most the policy's maximum. */
int64_t task_backoff_ms(const struct task_policy *p, int32_t attempt);
/* Returns the attempts t may use under p. */
int32_t task_max_attempts(const struct task *t, const struct task_policy *p);

/* Returns 1 for COMPLETED, FAILED and CANCELLED, else 0. */
int task_state_final(enum task_state s);
/* Returns "PENDING", "RUNNING", ... (static), "UNKNOWN" for other values. */
const char *task_state_name(enum task_state s);
/* Inverse of task_state_name() for the five real states, case-insensitive,
 * also accepting the proto's "TASK_STATUS_" prefix ("running",
 * "TASK_STATUS_RUNNING"). Returns the state, or -1 if unknown. */
int task_state_from_name(const char *name);
/* Returns "assign", "complete", ... (static). */
const char *task_event_name(enum task_event ev);

/*
 * Checks a submitted spec, so the gateway and the scheduler reject the same
 * things with the same words. Returns 0, or -EINVAL with a message for the
 * client in err (errlen bytes, always NUL-terminated): empty or oversized
 * name, payload over max_payload bytes, negative max_attempts or timeout.
 */
int task_spec_check(const char *name, size_t payload_len, int32_t max_attempts, int64_t timeout_ms,
                    size_t max_payload, char *err, size_t errlen);

/*
 * Checks a spec's labels (n of them, borrowed; a NULL key or value counts
 * as empty) the same way: at most TASK_LABELS_MAX labels, each key 1 to
 * TASK_LABEL_KEY_MAX bytes and each value at most TASK_LABEL_VALUE_MAX.
 * Returns 0, or -EINVAL with a message for the client in err.
 */
int task_labels_check(const struct task_label *labels, size_t n, char *err, size_t errlen);

#define TASK_LABELS_MAX 64
#define TASK_LABEL_KEY_MAX 128
#define TASK_LABEL_VALUE_MAX 1024

/* Longest task name accepted by task_spec_check(). */
#define TASK_NAME_MAX 256
/* Most attempts a spec may ask for. */
#define TASK_ATTEMPTS_MAX 100

#endif
