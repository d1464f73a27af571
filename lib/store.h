/*
 * store: durable task state behind one interface, so the embedded SQLite
 * store (store_sqlite.c) can be joined later by a server-backed one. A store
 * is an opaque handle whose functions dispatch through a table of
 * operations; a new backend fills a struct store_ops and embeds struct
 * store first in its own handle.
 *
 * Group commit: writes (store_put, store_update) go into a batch that only
 * store_flush() makes durable. The scheduler calls store_flush() once per
 * event-loop turn and acknowledges submits only after it returned 0. Reads
 * through the same store see the unflushed batch.
 *
 * If a flush fails, every task put since the last successful flush is gone
 * (the scheduler must fail those submits and forget the tasks); updates are
 * kept in memory and written again by the next flush, so a status change is
 * never silently lost while the disk is full. A write error can doom the
 * batch early (SQLite rolls back on disk full; a failed update rolls back
 * on purpose): later writes of the turn then fail at once with the same
 * error, and so does the flush. A put refused with -EEXIST never harms the
 * batch.
 *
 * Errors: -ENOSPC disk (or --max-db-size) full -> RESOURCE_EXHAUSTED;
 * -EROFS / -EACCES read-only or not permitted, -EIO I/O error, -EBUSY data
 * directory locked by another process -> UNAVAILABLE; -ENOENT not found;
 * -EEXIST id or idempotency key already stored; -EINVAL bad argument (e.g.
 * page token); E_CORRUPT the database is damaged; E_UNSUPPORTED it was
 * written by a newer orchd. The store logs the backend's own message.
 *
 * Not thread-safe: one store per scheduler, used from its loop thread. (The
 * SQLite store runs its WAL checkpoints under load on a thread of its own,
 * with its own connection; store_del() joins it.)
 */
#ifndef ORCHD_STORE_H
#define ORCHD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "id.h"
#include "task.h"

struct store;

/* Receives a task read from the store and takes ownership of it (free with
 * task_del()). Return 0 to go on, non-zero to stop; the value is returned
 * by the reading function. */
typedef int (*store_task_cb)(struct task *t, void *arg);

struct store_filter {
	enum task_state status; /* TASK_UNSPECIFIED = any */
	const char *name;       /* NULL or "" = any; borrowed */
	int page_size;          /* <= 0: STORE_PAGE_DEFAULT; capped at STORE_PAGE_MAX */
	const char *page_token; /* NULL or "" = first page; borrowed */
	int with_payload;       /* read payloads too (they can be large) */
};

#define STORE_PAGE_DEFAULT 100
#define STORE_PAGE_MAX 1000

struct store_sqlite_options {
	/* synchronous=FULL: fsync the WAL on every commit, surviving power
	 * loss. Default (0) is NORMAL: a commit survives a process crash
	 * (kill -9) but the last commits may be lost on power loss. */
	int sync_full;
	/* Refuse to grow the database past this many bytes (-ENOSPC), 0 = no
	 * limit. Lets an operator cap disk use and tests fill the "disk". */
	int64_t max_db_bytes;
	/* Under steady load, checkpoint the WAL once it holds this many
	 * bytes (0 = 64 MiB); a thread of the store does it. */
	int64_t wal_max_bytes;
};

/* The operations a backend implements; see the store_* functions below for
 * each one's contract. */
struct store_ops {
	const char *name;
	void (*del)(struct store *s);
	int (*put)(struct store *s, const struct task *t);
	int (*update)(struct store *s, const struct task *t);
	int (*flush)(struct store *s);
	int (*get)(struct store *s, const char *id, struct task **out);
	int (*find_idempotent)(struct store *s, const char *key, struct task **out);
	int (*load_active)(struct store *s, store_task_cb cb, void *arg);
	int (*list)(struct store *s, const struct store_filter *f, store_task_cb cb, void *arg,
	            char next_token[ID_LEN + 1]);
	int (*purge)(struct store *s, int64_t finished_before_ms, int max_rows);
	int (*maintain)(struct store *s); /* NULL: nothing to do */
};

/* Every backend handle starts with this. */
struct store {
	const struct store_ops *ops;
};

/* Opens (creating if needed) the SQLite store in directory dir (borrowed;
 * created with its parents if missing, mode 0700) with opt (NULL =
 * defaults), locks the directory against a second scheduler and brings the
 * schema up to date. Returns 0 and the store in *out (free with
 * store_del()), or a negative error (see above; -EBUSY if locked). */
int store_open_sqlite(const char *dir, const struct store_sqlite_options *opt, struct store **out);

/* Flushes what it can, closes and frees s; NULL is a no-op. */
void store_del(struct store *s);

/* Adds a new task (borrowed; all fields written) to the batch. Returns 0,
 * -EEXIST if its id or idempotency key is taken, or a write error. */
int store_put(struct store *s, const struct task *t);
/* Writes t's state (status, attempt, timestamps, output, error, worker,
 * cancel request; the spec never changes) to the batch. Returns 0 (also
 * when the task is not stored, which is not an error: it may have been
 * purged), or a write error. */
int store_update(struct store *s, const struct task *t);
/* Makes the batch durable. Returns 0 (also when there was nothing to do),
 * or a write error (see the top of this file for what survives). */
int store_flush(struct store *s);

/* Reads the task with this id. Returns 0 and a task in *out (free with
 * task_del()), -ENOENT, or a read error. */
int store_get(struct store *s, const char *id, struct task **out);
/* As store_get, by idempotency key. */
int store_find_idempotent(struct store *s, const char *key, struct task **out);
/* Calls cb for every PENDING and RUNNING task, oldest first (so pushing
 * them into a queue in this order keeps FIFO), with payloads. Returns the
 * number of tasks, cb's non-zero value, or a read error. */
int store_load_active(struct store *s, store_task_cb cb, void *arg);
/* Calls cb for one page of tasks matching f, newest first, and writes the
 * token of the next page into next_token ("" on the last page). Returns
 * the number of tasks, cb's non-zero value, -EINVAL for a malformed token,
 * or a read error. */
int store_list(struct store *s, const struct store_filter *f, store_task_cb cb, void *arg,
               char next_token[ID_LEN + 1]);
/* Deletes up to max_rows (<= 0: all) finished tasks that finished before
 * finished_before_ms, in the current batch. Returns how many, or an error.
 * Call it repeatedly with a bound to keep each loop turn short. Ids are
 * taken to be made (id.h) no later than their tasks finish: a task whose
 * id's time is past finished_before_ms waits for a later cutoff. */
int store_purge(struct store *s, int64_t finished_before_ms, int max_rows);
/* Housekeeping off the commit path, such as SQLite's WAL checkpoints (the
 * store never runs them inside store_flush). Call it periodically (the
 * scheduler does, every tick) outside a batch; it does most of its work
 * when no commit happened since the previous call. Returns 0 or an error
 * (logged; nothing is lost, the next call tries again). */
int store_maintain(struct store *s);

#endif
