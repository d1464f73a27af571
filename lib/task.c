/* task: the task model and its one transition function (see task.h). */
#include "task.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "xalloc.h"

const struct task_policy task_policy_default = {
    .default_max_attempts = 3,
    .backoff_base_ms = 500,
    .backoff_max_ms = 30000,
};

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

struct task *task_new(const char *id, const char *name, int64_t now_ms)
{
	struct task *t = xcalloc(1, sizeof *t);
	if (id)
		snprintf(t->id, sizeof t->id, "%s", id);
	else
		id_new(t->id);
	t->name = xstrdup(name ? name : "");
	t->status = TASK_PENDING;
	t->created_ms = now_ms;
	return t;
}

void task_del(struct task *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->description);
	free(t->payload);
	free(t->idempotency_key);
	for (size_t i = 0; i < t->nlabels; i++) {
		free(t->labels[i].key);
		free(t->labels[i].value);
	}
	free(t->labels);
	free(t->output);
	free(t->error);
	free(t->worker_id);
	free(t->message);
	free(t);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static uint8_t *bytes_dup(const uint8_t *p, size_t n)
{
	return n ? xmemdup(p, n) : NULL;
}

struct task *task_clone(const struct task *t)
{
	struct task *c = xmalloc(sizeof *c);
	*c = *t;
	c->name = xstrdup(t->name);
	c->description = dup_or_null(t->description);
	c->payload = bytes_dup(t->payload, t->payload_len);
	c->idempotency_key = dup_or_null(t->idempotency_key);
	c->labels = t->nlabels ? xcalloc(t->nlabels, sizeof *c->labels) : NULL;
	for (size_t i = 0; i < t->nlabels; i++) {
		c->labels[i].key = xstrdup(t->labels[i].key);
		c->labels[i].value = xstrdup(t->labels[i].value);
	}
	c->output = bytes_dup(t->output, t->output_len);
	c->error = dup_or_null(t->error);
	c->worker_id = dup_or_null(t->worker_id);
	c->message = dup_or_null(t->message);
	c->qidx = 0;
	c->qwhere = 0;
	return c;
}

void task_set_str(char **field, const char *s)
{
	char *old = *field;
	*field = s && *s ? xstrdup(s) : NULL;
	free(old);
}

void task_set_bytes(uint8_t **field, size_t *len, const void *p, size_t n)
{
	uint8_t *old = *field;
	*field = n ? xmemdup(p, n) : NULL;
	*len = n;
	free(old);
}

void task_add_label(struct task *t, const char *key, const char *value)
{
	t->labels = xrealloc(t->labels, (t->nlabels + 1) * sizeof *t->labels);
	t->labels[t->nlabels].key = xstrdup(key);
	t->labels[t->nlabels].value = xstrdup(value ? value : "");
	t->nlabels++;
}

const char *task_label(const struct task *t, const char *key)
{
	for (size_t i = 0; i < t->nlabels; i++)
		if (strcmp(t->labels[i].key, key) == 0)
			return t->labels[i].value;
	return NULL;
}

/* ------------------------------------------------------------------------
 * Names and rules
 * ------------------------------------------------------------------------ */

int task_state_final(enum task_state s)
{
	return s == TASK_COMPLETED || s == TASK_FAILED || s == TASK_CANCELLED;
}

const char *task_state_name(enum task_state s)
{
	switch (s) {
	case TASK_UNSPECIFIED:
		return "UNSPECIFIED";
	case TASK_PENDING:
		return "PENDING";
	case TASK_RUNNING:
		return "RUNNING";
	case TASK_COMPLETED:
		return "COMPLETED";
	case TASK_FAILED:
		return "FAILED";
	case TASK_CANCELLED:
		return "CANCELLED";
	}
	return "UNKNOWN";
}

int task_state_from_name(const char *name)
{
	if (!strncasecmp(name, "TASK_STATUS_", 12))
		name += 12;
	for (int s = TASK_PENDING; s <= TASK_CANCELLED; s++)
		if (!strcasecmp(name, task_state_name((enum task_state)s)))
			return s;
	return -1;
}

const char *task_event_name(enum task_event ev)
{
	switch (ev) {
	case TASK_EV_ASSIGN:
		return "assign";
	case TASK_EV_COMPLETE:
		return "complete";
	case TASK_EV_FAIL:
		return "fail";
	case TASK_EV_WORKER_LOST:
		return "worker_lost";
	case TASK_EV_TIMEOUT:
		return "timeout";
	case TASK_EV_CANCEL:
		return "cancel";
	case TASK_EV_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

int64_t task_backoff_ms(const struct task_policy *p, int32_t attempt)
{
	if (!p)
		p = &task_policy_default;
	int64_t d = p->backoff_base_ms;
	/* Doubling stops at the cap, which also keeps d from overflowing. */
	for (int32_t i = 1; i < attempt && d < p->backoff_max_ms; i++)
		d *= 2;
	return d < p->backoff_max_ms ? d : p->backoff_max_ms;
}

int32_t task_max_attempts(const struct task *t, const struct task_policy *p)
{
	if (!p)
		p = &task_policy_default;
	if (t->max_attempts > 0)
		return t->max_attempts;
	return p->default_max_attempts > 0 ? p->default_max_attempts : 1;
}

/* The end of a check: 0 when nothing was wrong (why is NULL), else -EINVAL
 * with why copied into err. */
static int verdict(const char *why, char *err, size_t errlen)
{
	if (!why)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

int task_spec_check(const char *name, size_t payload_len, int32_t max_attempts, int64_t timeout_ms,
                    size_t max_payload, char *err, size_t errlen)
{
	const char *why = NULL;
	char buf[160];
	if (!name || !*name) {
		why = "name is empty: set TaskSpec.name to the task type";
	} else if (strlen(name) > TASK_NAME_MAX) {
		snprintf(buf, sizeof buf, "name is %zu bytes long, the limit is %d", strlen(name),
		         TASK_NAME_MAX);
		why = buf;
	} else if (payload_len > max_payload) {
		snprintf(buf, sizeof buf, "payload is %zu bytes, the limit is %zu (--max-payload)",
		         payload_len, max_payload);
		why = buf;
	} else if (max_attempts < 0 || max_attempts > TASK_ATTEMPTS_MAX) {
		snprintf(buf, sizeof buf,
		         "max_attempts is %" PRId32 ", allowed are 0 (default) to %d", max_attempts,
		         TASK_ATTEMPTS_MAX);
		why = buf;
	} else if (timeout_ms < 0) {
		snprintf(buf, sizeof buf,
		         "timeout_ms is %" PRId64 ", it must be 0 (none) or positive", timeout_ms);
		why = buf;
	}
	return verdict(why, err, errlen);
}

int task_labels_check(const struct task_label *labels, size_t n, char *err, size_t errlen)
{
	char buf[256];
	const char *why = NULL;
	if (n > TASK_LABELS_MAX) {
		snprintf(buf, sizeof buf, "%zu labels, the limit is %d", n, TASK_LABELS_MAX);
		why = buf;
	}
	for (size_t i = 0; i < n && !why; i++) {
		size_t k = labels[i].key ? strlen(labels[i].key) : 0;
		size_t v = labels[i].value ? strlen(labels[i].value) : 0;
		if (k == 0) {
			snprintf(buf, sizeof buf, "label %zu has an empty key", i + 1);
			why = buf;
		} else if (k > TASK_LABEL_KEY_MAX) {
			snprintf(buf, sizeof buf, "label key %.32s... is %zu bytes, the limit is %d",
			         labels[i].key, k, TASK_LABEL_KEY_MAX);
			why = buf;
		} else if (v > TASK_LABEL_VALUE_MAX) {
			snprintf(buf, sizeof buf, "label %.128s: value is %zu bytes, the limit is %d",
			         labels[i].key, v, TASK_LABEL_VALUE_MAX);
			why = buf;
		}
	}
	return verdict(why, err, errlen);
}

/* ------------------------------------------------------------------------
 * Transitions
 * ------------------------------------------------------------------------ */

static int illegal(struct task *t, enum task_event ev, const char *why)
{
	log_warn("task_illegal_transition", "task=%s status=%s event=%s attempt=%d reason=%s",
	         t->id, task_state_name(t->status), task_event_name(ev), (int)t->attempt,
	         log_quote(why));
	return E_STATE;
}

/* Checks that an event about a running attempt comes from that attempt. */
static const char *stale(const struct task *t, const struct task_ev *e)
{
	if (e->worker_id && (!t->worker_id || strcmp(e->worker_id, t->worker_id) != 0))
		return "event from a worker that no longer runs the task";
	if (e->attempt && e->attempt != t->attempt)
		return "event for another attempt";
	return NULL;
}

static void finish(struct task *t, enum task_state s, int64_t now_ms)
{
	t->status = s;
	t->finished_ms = now_ms;
	t->deadline_ms = 0;
	t->not_before_ms = 0;
	t->cancel_requested = 0;
}

/* A running attempt ended badly: back to PENDING for another attempt (after
 * a backoff when `backoff`), or FAILED once attempts are used up. */
static int retry_or_fail(struct task *t, const struct task_ev *e, const char *what, int backoff,
                         int64_t now_ms)
{
	char msg[512];
	int32_t max = task_max_attempts(t, e->policy);
	if (e->error && *e->error)
		snprintf(msg, sizeof msg, "%s: %s", what, e->error);
	else
		snprintf(msg, sizeof msg, "%s", what);
	if (t->attempt >= max) {
		char final[600];
		snprintf(final, sizeof final, "gave up after %d of %d attempts; last: %s",
		         (int)t->attempt, (int)max, msg);
		task_set_str(&t->error, final);
		finish(t, TASK_FAILED, now_ms);
		return TASK_FAILED;
	}
	task_set_str(&t->error, msg);
	t->status = TASK_PENDING;
	t->deadline_ms = 0;
	t->not_before_ms = backoff ? now_ms + task_backoff_ms(e->policy, t->attempt) : 0;
	t->percent = 0;
	task_set_str(&t->message, NULL);
	return TASK_PENDING;
}

int task_transition(struct task *t, enum task_event ev, const struct task_ev *e, int64_t now_ms)
{
	static const struct task_ev none;
	const char *why;
	if (!e)
		e = &none;

	switch (ev) {
	case TASK_EV_ASSIGN:
		if (t->status != TASK_PENDING)
			return illegal(t, ev, "only a pending task can be assigned");
		if (now_ms < t->not_before_ms)
			return illegal(t, ev, "task is still in its retry backoff");
		if (t->attempt >= task_max_attempts(t, e->policy))
			return illegal(t, ev, "task has no attempts left");
		t->status = TASK_RUNNING;
		t->attempt++;
		t->started_ms = now_ms;
		t->not_before_ms = 0;
		t->deadline_ms = t->timeout_ms > 0 ? now_ms + t->timeout_ms : 0;
		t->cancel_requested = 0;
		t->percent = 0;
		task_set_str(&t->message, NULL);
		task_set_str(&t->worker_id, e->worker_id);
		return TASK_RUNNING;

	case TASK_EV_COMPLETE:
		if (t->status != TASK_RUNNING)
			return illegal(t, ev, "only a running task can complete");
		if ((why = stale(t, e)))
			return illegal(t, ev, why);
		task_set_bytes(&t->output, &t->output_len, e->output, e->output_len);
		task_set_str(&t->error, NULL);
		t->percent = 100;
		finish(t, TASK_COMPLETED, now_ms);
		return TASK_COMPLETED;

	case TASK_EV_FAIL:
	case TASK_EV_CANCELLED:
		if (t->status != TASK_RUNNING)
			return illegal(t, ev, "only a running task can fail or stop");
		if ((why = stale(t, e)))
			return illegal(t, ev, why);
		task_set_bytes(&t->output, &t->output_len, e->output, e->output_len);
		if (t->cancel_requested) {
			/* The client asked for this; whatever the worker says,
			 * the task is not retried. Keep the cancel reason. */
			finish(t, TASK_CANCELLED, now_ms);
			return TASK_CANCELLED;
		}
		if (ev == TASK_EV_CANCELLED)
			/* Stopped by the worker on its own (e.g. it is shutting
			 * down): not the client's wish, so try again. */
			return retry_or_fail(t, e, "stopped by the worker", 0, now_ms);
		if (e->no_retry) {
			task_set_str(&t->error, e->error && *e->error ? e->error : "failed");
			finish(t, TASK_FAILED, now_ms);
			return TASK_FAILED;
		}
		return retry_or_fail(t, e, "failed", 1, now_ms);

	case TASK_EV_WORKER_LOST:
	case TASK_EV_TIMEOUT:
		if (t->status != TASK_RUNNING)
			return illegal(t, ev,
			               "only a running task can lose its worker or time out");
		if ((why = stale(t, e)))
			return illegal(t, ev, why);
		if (t->cancel_requested) {
			finish(t, TASK_CANCELLED, now_ms);
			return TASK_CANCELLED;
		}
		if (ev == TASK_EV_TIMEOUT) {
			char what[64];
			snprintf(what, sizeof what, "timed out after %" PRId64 " ms",
			         t->timeout_ms);
			return retry_or_fail(t, e, what, 1, now_ms);
		}
		/* The task did nothing wrong: it may run again at once. */
		return retry_or_fail(t, e, "worker lost", 0, now_ms);

	case TASK_EV_CANCEL:
		if (task_state_final(t->status))
			return illegal(t, ev, "task is already finished");
		if (t->status != TASK_PENDING && t->status != TASK_RUNNING)
			return illegal(t, ev, "task has no valid status");
		task_set_str(&t->error, e->error && *e->error ? e->error : "cancelled");
		if (t->status == TASK_RUNNING) {
			t->cancel_requested = 1;
			return TASK_RUNNING;
		}
		finish(t, TASK_CANCELLED, now_ms);
		return TASK_CANCELLED;
	}
	log_warn("task_illegal_transition", "task=%s event=%d reason=\"unknown event\"", t->id,
	         (int)ev);
	return -EINVAL;
}

int task_progress(struct task *t, int32_t attempt, int32_t percent, const char *message)
{
	if (t->status != TASK_RUNNING || (attempt && attempt != t->attempt))
		return E_STATE;
	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	int changed = 0;
	if (percent > t->percent) {
		t->percent = percent;
		changed = 1;
	}
	if (message && strcmp(message, t->message ? t->message : "") != 0) {
		task_set_str(&t->message, message);
		changed = 1;
	}
	return changed;
}
