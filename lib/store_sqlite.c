/*
 * store_sqlite: the embedded store, one SQLite database in WAL mode under the
 * data directory (see store.h for the contract).
 *
 * Files in the directory: orchd.db (+ -wal, -shm) and orchd.lock, which a
 * scheduler holds flock()ed so that a second one on the same directory fails
 * fast instead of interleaving writes.
 *
 * Group commit with write-behind: store_put and store_update only record
 * the task in the pending list (one entry per task, holding its latest
 * state), and store_flush() writes each entry once, in one transaction, and
 * commits. A task put and updated in the same batch becomes one INSERT with
 * its final state; a task updated twice, one UPDATE. That is what makes a
 * scheduler turn cheap: a task submitted and assigned in the same turn costs
 * one row write instead of two; and the new tasks of a batch go in by
 * INSERTs of up to PUT_ROWS rows each. A read (get, list, ...) or a purge
 * first writes the pending entries into the open transaction (spill), so
 * the store's own reads see the batch.
 *
 * store_put still answers -EEXIST at once: it looks the id and idempotency
 * key up in the pending list and, inside the batch transaction it opens,
 * in the table; the id only when it is not above every id stored (ids are
 * time-ordered, so a new one is).
 *
 * Tables: tasks, one row per task, rewritten by every status change;
 * payloads, the payloads too large to be rewritten with it; schema_version.
 *
 * A failed flush rolls the transaction back and drops the entries of tasks
 * put in that batch (never acknowledged: the scheduler forgets them); the
 * other entries stay pending and are written by the next flush, so a
 * status change is never lost.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "map.h"
#include "xalloc.h"

/* ------------------------------------------------------------------------
 * Schema and statements
 * ------------------------------------------------------------------------ */

/* migrations[v] takes the schema from version v to v + 1. Append only:
 * released entries are never edited, so every data dir can be upgraded. */
static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " description TEXT,"
    " payload BLOB,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 0,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " idem_key TEXT,"
    " labels BLOB,"
    " status INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL DEFAULT 0,"
    " started_ms INTEGER NOT NULL DEFAULT 0,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0,"
    " deadline_ms INTEGER NOT NULL DEFAULT 0,"
    " output BLOB,"
    " error TEXT,"
    " worker_id TEXT,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    /* NULL keys (no idempotency) are not indexed, and so never collide. */
    "CREATE UNIQUE INDEX tasks_idem ON tasks(idem_key) WHERE idem_key IS NOT NULL;"
    "CREATE INDEX tasks_status ON tasks(status, id);"
    "CREATE INDEX tasks_name ON tasks(name, id);"
    /* The startup load reads exactly this set, in id order, without a sort. */
    "CREATE INDEX tasks_active ON tasks(id) WHERE status IN (1, 2);"
    "CREATE INDEX tasks_finished ON tasks(finished_ms) WHERE finished_ms > 0;",
    /* v2: tasks_status changed with every status change (three B-tree
     * writes per task). Status lists now use tasks_active for PENDING and
     * RUNNING and tasks_final, written once when a task ends, for the rest. */
    "DROP INDEX tasks_status;"
    "CREATE INDEX tasks_final ON tasks(status, id) WHERE status NOT IN (1, 2);",
    /* v3: tasks_finished served only the purge, once a minute, and cost a
     * B-tree write (and a WAL page per commit) for every task that ends.
     * The purge now walks tasks_final up to the first id of its cutoff: a
     * task's id is made before the task can finish. */
    "DROP INDEX tasks_finished;"
    /* Payloads above PAYLOAD_INLINE_MAX bytes live in their own table,
     * keyed by the task's rowid: a task's row is rewritten at every status
     * change, and a large payload in it (its overflow pages) with it. Rows
     * written before keep theirs inline; reads take either. */
    "CREATE TABLE payloads (task INTEGER PRIMARY KEY, payload BLOB NOT NULL);"
    "CREATE TRIGGER tasks_payload_gone AFTER DELETE ON tasks"
    " BEGIN DELETE FROM payloads WHERE task = old.rowid; END;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* Larger payloads are stored in the payloads table (see schema v3). */
#define PAYLOAD_INLINE_MAX 1024
/* A task's payload, inline or not (coalesce looks no further than it must). */
#define PAYLOAD                                                                                    \
	"coalesce(payload, (SELECT p.payload FROM payloads p WHERE p.task = tasks.rowid))"
#define COLS_TAIL                                                                                  \
	" priority, max_attempts, timeout_ms, idem_key, labels, status, attempt, created_ms,"      \
	" started_ms, finished_ms, not_before_ms, deadline_ms, output, error, worker_id,"          \
	" cancel_requested"
#define COLS "id, name, description, " PAYLOAD "," COLS_TAIL
/* As COLS, but the payload only when parameter ?9 is true (list pages). */
#define COLS_OPT_PAYLOAD "id, name, description, CASE WHEN ?9 THEN " PAYLOAD " END," COLS_TAIL
#define LIST_TAIL " id < ?3 ORDER BY id DESC LIMIT ?4"

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_UPDATE,
	ST_GET,
	ST_IDEM,
	ST_ACTIVE,
	ST_LIST_ALL,
	ST_LIST_STATUS,
	ST_LIST_ACTIVE,
	ST_LIST_NAME,
	ST_LIST_BOTH,
	ST_PURGE,
	ST_EXISTS,
	ST_PAGES,
	ST_MAX_ID,
	ST_PUT_PAYLOAD,
	ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_UPDATE] = "UPDATE tasks SET status = ?2, attempt = ?3, started_ms = ?4,"
                  " finished_ms = ?5, not_before_ms = ?6, deadline_ms = ?7, output = ?8,"
                  " error = ?9, worker_id = ?10, cancel_requested = ?11 WHERE id = ?1",
    [ST_GET] = "SELECT " COLS " FROM tasks WHERE id = ?1",
    [ST_IDEM] = "SELECT " COLS " FROM tasks WHERE idem_key = ?1",
    [ST_ACTIVE] = "SELECT " COLS " FROM tasks WHERE status IN (1, 2) ORDER BY id",
    [ST_LIST_ALL] = "SELECT " COLS_OPT_PAYLOAD " FROM tasks WHERE" LIST_TAIL,
    /* The IN and NOT IN terms repeat the partial indexes' conditions,
     * which is what lets SQLite use them with a bound status. */
    [ST_LIST_STATUS] = "SELECT " COLS_OPT_PAYLOAD " FROM tasks WHERE status = ?1 AND"
                       " status NOT IN (1, 2) AND" LIST_TAIL,
    [ST_LIST_ACTIVE] = "SELECT " COLS_OPT_PAYLOAD " FROM tasks WHERE status = ?1 AND"
                       " status IN (1, 2) AND" LIST_TAIL,
    [ST_LIST_NAME] = "SELECT " COLS_OPT_PAYLOAD " FROM tasks WHERE name = ?2 AND" LIST_TAIL,
    [ST_LIST_BOTH] =
        "SELECT " COLS_OPT_PAYLOAD " FROM tasks WHERE status = ?1 AND name = ?2 AND" LIST_TAIL,
    /* tasks_final, one id range per final status: ?3 is the first id of
     * the cutoff's millisecond. In parentheses: clang warns of a
     * concatenation ending an array. */
    [ST_PURGE] = ("DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
                  " WHERE status IN (3, 4, 5) AND status NOT IN (1, 2) AND id < ?3"
                  " AND finished_ms > 0 AND finished_ms < ?1 LIMIT ?2)"),
    /* A NULL ?2 matches nothing: "idem_key = NULL" is never true. */
    [ST_EXISTS] = ("SELECT 1 FROM tasks WHERE id = ?1"
                   " UNION ALL SELECT 1 FROM tasks WHERE idem_key = ?2 LIMIT 1"),
    [ST_PAGES] = "PRAGMA page_count",
    [ST_MAX_ID] = "SELECT max(id) FROM tasks",
    /* After the task's row, which may have gone in with others. */
    [ST_PUT_PAYLOAD] = "INSERT INTO payloads (task, payload)"
                       " VALUES ((SELECT rowid FROM tasks WHERE id = ?1), ?2)",
};

/* New tasks go in by INSERTs of up to PUT_ROWS rows, one statement for
 * each number of rows, prepared on first use (about 5.5 + 2.7 KB per row
 * each). From row to row a statement's cursors stay at the right edges of
 * the table and its indexes, where new ids go, and its fixed cost (opening
 * the cursors, a first seek from each root, the halt; ~11 k instructions)
 * is paid once per statement, not once per task. OR FAIL: a row that fails
 * leaves the rows before it in the transaction instead of undoing the
 * statement, which spares SQLite a statement journal for each multi-row
 * INSERT; every failed write abandons the whole batch anyway. The state
 * columns (from status on) come in the same order as in ST_UPDATE, so one
 * function binds them for both (bind_state). */
#define PUT_ROWS 16
#define PUT_COLS 20
#define PUT_HEAD                                                                                   \
	"INSERT OR FAIL INTO tasks (id, name, description, payload, priority, max_attempts,"       \
	" timeout_ms, idem_key, labels, created_ms, status, attempt, started_ms, finished_ms,"     \
	" not_before_ms, deadline_ms, output, error, worker_id, cancel_requested) VALUES "

/* ------------------------------------------------------------------------
 * The handle
 * ------------------------------------------------------------------------ */

/* A task's state columns: borrowed from a task (view), or owned copies in a
 * pending entry. */
struct redo {
	char id[ID_LEN + 1];
	int status, attempt, cancel_requested;
	int64_t started_ms, finished_ms, not_before_ms, deadline_ms;
	uint8_t *output;
	size_t output_len;
	char *error, *worker_id;
};

/* One task with writes not yet committed. */
struct pend {
	struct redo r;   /* its latest state, owned */
	struct task *t;  /* put in this batch: an owned copy (spec); else NULL */
	int inserted;    /* t's row is in the open transaction */
	int written;     /* r is in the open transaction */
};

struct sq {
	struct store base; /* first: a struct store * is a struct sq * */
	sqlite3 *db;
	char *path;
	int lock_fd;
	sqlite3_stmt *st[ST_COUNT];
	/* put[n - 1] inserts n new tasks (put_stmt) */
	sqlite3_stmt *put[PUT_ROWS];
	int in_txn;   /* a batch transaction is open (or was, until lost) */
	int txn_lost; /* SQLite rolled the batch back after an error */
	int lost_err;
	int64_t max_pages; /* --max-db-size in pages, 0 = none */
	struct pend **pend; /* in put/update order */
	size_t npend, pend_cap;
	size_t unwritten;  /* entries not yet written into the open transaction */
	struct map by_id;  /* id -> pending entry */
	struct map by_key; /* idempotency key -> pending entry of a fresh put */
	int wal_pages;     /* frames in the WAL after the last commit */
	/* At least the greatest id in the table or the batch: higher while a
	 * lost batch's or a purged task's id was the greatest. */
	char max_id[ID_LEN + 1];
	uint64_t commits, commits_seen; /* by commits, at the last maintain */
	int wal_max_pages;              /* busy: checkpoint past this */
	struct ckpt *ck;                /* the checkpointer thread, or NULL */
};

static const struct store_ops sqlite_ops;

/* Maps an SQLite result code to our errors (see store.h). */
static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return E_CORRUPT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return E_TOOBIG;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Returns the errno of the last failed system call on the WAL, else on the
 * database file; 0 if none failed. */
static int last_errno(sqlite3 *db)
{
	int e = 0;
	sqlite3_file *wal = NULL;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK &&
	    wal && wal->pMethods)
		wal->pMethods->xFileControl(wal, SQLITE_FCNTL_LAST_ERRNO, &e);
	if (!e)
		sqlite3_file_control(db, "main", SQLITE_FCNTL_LAST_ERRNO, &e);
	return e;
}

/* Logs a failed SQLite call (rc; sys, the errno its file kept, or 0;
 * SQLite's message msg, borrowed) and returns our error for it. SQLite
 * answers every failed write or sync with SQLITE_IOERR; the errno tells a
 * file system that went read-only under the store (ext4 does when an
 * error aborts it) from a true I/O error, which an operator needs. */
static int report(int rc, int sys, const char *op, const char *msg)
{
	log_error("store_error", "op=%s sqlite=%d errno=%d msg=%s", op, rc, sys, log_quote(msg));
	return sys == EROFS ? -EROFS : map_rc(rc);
}

/* Logs a failed call on the store's connection and returns our error. */
static int fail(struct sq *s, int rc, const char *op)
{
	int sys = s->db && (rc & 0xff) == SQLITE_IOERR ? last_errno(s->db) : 0;
	return report(rc, sys, op, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

/* Returns the cached statement, preparing it on first use; NULL on error
 * (logged, code in *rc). */
static sqlite3_stmt *stmt(struct sq *s, int which, int *rc)
{
	if (!s->st[which]) {
		*rc = sqlite3_prepare_v3(s->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
		                         &s->st[which], NULL);
		if (*rc != SQLITE_OK) {
			fail(s, *rc, "prepare");
			return NULL;
		}
	}
	return s->st[which];
}

/* Returns the INSERT of n (1..PUT_ROWS) rows, preparing it on first use;
 * NULL on error (logged, code in *rc). */
static sqlite3_stmt *put_stmt(struct sq *s, int n, int *rc)
{
	if (s->put[n - 1])
		return s->put[n - 1];
	char q[sizeof PUT_HEAD + PUT_ROWS * PUT_COLS * 8]; /* ", (?301" is 7 */
	size_t o = snprintf(q, sizeof q, "%s", PUT_HEAD);
	for (int r = 0; r < n; r++)
		for (int c = 1; c <= PUT_COLS; c++)
			o += snprintf(q + o, sizeof q - o, "%s?%d%s",
			              c == 1 ? (r ? ", (" : "(") : ", ", r * PUT_COLS + c,
			              c == PUT_COLS ? ")" : "");
	*rc = sqlite3_prepare_v3(s->db, q, -1, SQLITE_PREPARE_PERSISTENT, &s->put[n - 1], NULL);
	if (*rc != SQLITE_OK) {
		fail(s, *rc, "prepare");
		return NULL;
	}
	return s->put[n - 1];
}

/* Every use of a statement binds each parameter it has, so the bindings
 * are left as they are: clearing them walked all PUT_ROWS * PUT_COLS of
 * the largest INSERT's. */
static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
}

/* Runs a statement that returns no rows. Returns an SQLite code. */
static int run(struct sq *s, int which)
{
	int rc;
	sqlite3_stmt *st = stmt(s, which, &rc);
	if (!st)
		return rc;
	rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int exec(struct sq *s, const char *q)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, q, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		log_error("store_error", "op=exec sqlite=%d msg=%s", rc,
		          log_quote(msg ? msg : sqlite3_errstr(rc)));
	sqlite3_free(msg);
	return rc;
}

/* ------------------------------------------------------------------------
 * Rows <-> tasks
 * ------------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (n)
		sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Labels are stored as (u32 length, bytes) pairs, little-endian: any bytes
 * survive, including NULs. */
static uint8_t *labels_encode(const struct task *t, size_t *len)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nlabels; i++)
		n += 8 + strlen(t->labels[i].key) + strlen(t->labels[i].value);
	*len = n;
	if (!n)
		return NULL;
	uint8_t *b = xmalloc(n), *p = b;
	for (size_t i = 0; i < t->nlabels; i++) {
		const char *kv[2] = {t->labels[i].key, t->labels[i].value};
		for (int j = 0; j < 2; j++) {
			uint32_t l = (uint32_t)strlen(kv[j]);
			for (int k = 0; k < 4; k++)
				*p++ = (uint8_t)(l >> (8 * k));
			memcpy(p, kv[j], l);
			p += l;
		}
	}
	return b;
}

static int labels_decode(struct task *t, const uint8_t *b, size_t n)
{
	size_t o = 0;
	while (o < n) {
		char *kv[2];
		for (int j = 0; j < 2; j++) {
			if (n - o < 4)
				return -1;
			uint32_t l = (uint32_t)b[o] | (uint32_t)b[o + 1] << 8 |
			             (uint32_t)b[o + 2] << 16 | (uint32_t)b[o + 3] << 24;
			o += 4;
			if (n - o < l) {
				if (j)
					free(kv[0]);
				return -1;
			}
			kv[j] = xstrndup((const char *)b + o, l);
			o += l;
		}
		t->labels = xrealloc(t->labels, (t->nlabels + 1) * sizeof *t->labels);
		t->labels[t->nlabels].key = kv[0];
		t->labels[t->nlabels].value = kv[1];
		t->nlabels++;
	}
	return 0;
}

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v && *v ? xstrdup((const char *)v) : NULL;
}

static uint8_t *col_blob(sqlite3_stmt *st, int i, size_t *len)
{
	const void *v = sqlite3_column_blob(st, i);
	*len = (size_t)sqlite3_column_bytes(st, i);
	if (!v || !*len) {
		*len = 0;
		return NULL;
	}
	return xmemdup(v, *len);
}

/* Builds a task from the current row (columns in COLS order). */
static struct task *row_task(sqlite3_stmt *st)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *name = (const char *)sqlite3_column_text(st, 1);
	struct task *t = task_new(id ? id : "", name, sqlite3_column_int64(st, 11));
	t->description = col_str(st, 2);
	t->payload = col_blob(st, 3, &t->payload_len);
	t->priority = sqlite3_column_int(st, 4);
	t->max_attempts = sqlite3_column_int(st, 5);
	t->timeout_ms = sqlite3_column_int64(st, 6);
	t->idempotency_key = col_str(st, 7);
	const void *lb = sqlite3_column_blob(st, 8);
	if (lb && labels_decode(t, lb, (size_t)sqlite3_column_bytes(st, 8)) < 0)
		log_warn("store_bad_labels", "task=%s", t->id);
	t->status = (enum task_state)sqlite3_column_int(st, 9);
	t->attempt = sqlite3_column_int(st, 10);
	t->started_ms = sqlite3_column_int64(st, 12);
	t->finished_ms = sqlite3_column_int64(st, 13);
	t->not_before_ms = sqlite3_column_int64(st, 14);
	t->deadline_ms = sqlite3_column_int64(st, 15);
	t->output = col_blob(st, 16, &t->output_len);
	t->error = col_str(st, 17);
	t->worker_id = col_str(st, 18);
	t->cancel_requested = sqlite3_column_int(st, 19);
	return t;
}

/* Steps st (bound by the caller), handing each row to cb. Returns the row
 * count, cb's non-zero value or an error. Resets st. */
static int read_rows(struct sq *s, sqlite3_stmt *st, store_task_cb cb, void *arg)
{
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct task *t = row_task(st);
		n++;
		int r = cb(t, arg);
		if (r) {
			done(st);
			return r;
		}
	}
	done(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read");
	return n;
}

/* ------------------------------------------------------------------------
 * The batch transaction
 * ------------------------------------------------------------------------ */

static void redo_free(struct redo *r)
{
	free(r->output);
	free(r->error);
	free(r->worker_id);
}

/* Returns t's state columns, borrowing t's memory. */
static struct redo view(const struct task *t)
{
	struct redo r = {
	    .status = t->status,
	    .attempt = t->attempt,
	    .cancel_requested = t->cancel_requested,
	    .started_ms = t->started_ms,
	    .finished_ms = t->finished_ms,
	    .not_before_ms = t->not_before_ms,
	    .deadline_ms = t->deadline_ms,
	    .output = t->output,
	    .output_len = t->output_len,
	    .error = t->error,
	    .worker_id = t->worker_id,
	};
	memcpy(r.id, t->id, sizeof r.id);
	return r;
}

/* Replaces r's state with owned copies of t's. */
static void redo_set(struct redo *r, const struct task *t)
{
	redo_free(r);
	*r = view(t);
	r->output = t->output_len ? xmemdup(t->output, t->output_len) : NULL;
	r->error = t->error ? xstrdup(t->error) : NULL;
	r->worker_id = t->worker_id ? xstrdup(t->worker_id) : NULL;
}

/* Adds a pending entry for t (state copied; spec too when fresh). */
static struct pend *pend_add(struct sq *s, const struct task *t, int fresh)
{
	if (s->npend == s->pend_cap) {
		s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 64;
		s->pend = xrealloc(s->pend, s->pend_cap * sizeof *s->pend);
	}
	struct pend *p = xcalloc(1, sizeof *p);
	redo_set(&p->r, t);
	if (fresh) {
		p->t = task_clone(t);
		if (p->t->idempotency_key && *p->t->idempotency_key)
			map_put(&s->by_key, p->t->idempotency_key, p);
	}
	s->pend[s->npend++] = p;
	map_put(&s->by_id, p->r.id, p);
	s->unwritten++;
	return p;
}

static void pend_free(struct pend *p)
{
	redo_free(&p->r);
	task_del(p->t);
	free(p);
}

/* After a commit: forgets every entry (ok) or, after a failure, the fresh
 * ones, keeping the others to be written again. */
static void pend_settle(struct sq *s, int ok)
{
	size_t keep = 0;
	map_free(&s->by_id);
	map_free(&s->by_key);
	for (size_t i = 0; i < s->npend; i++) {
		struct pend *p = s->pend[i];
		if (ok || p->t) {
			pend_free(p);
			continue;
		}
		p->written = 0;
		s->pend[keep++] = p;
		map_put(&s->by_id, p->r.id, p);
	}
	s->npend = s->unwritten = keep;
	if (s->pend_cap > 4096 && keep < 1024) {
		s->pend_cap = keep > 64 ? keep : 64;
		s->pend = xrealloc(s->pend, s->pend_cap * sizeof *s->pend);
	}
}

/* A write failed: if SQLite rolled the whole batch back (it does so for
 * some errors, e.g. disk full), remember that the batch is gone. */
static int write_failed(struct sq *s, int rc, const char *op)
{
	int err = fail(s, rc, op);
	if (s->in_txn && sqlite3_get_autocommit(s->db)) {
		s->txn_lost = 1;
		s->lost_err = err;
	}
	return err;
}

/* Gives up the batch after a failed write: an update must never vanish in
 * a commit that otherwise succeeds, so the batch is rolled back and the
 * pending entries (which hold the update) are written by the next one. */
static int abandon(struct sq *s, int err)
{
	if (!s->txn_lost) {
		if (!sqlite3_get_autocommit(s->db))
			run(s, ST_ROLLBACK);
		s->txn_lost = 1;
		s->lost_err = err;
	}
	return err;
}

/* Binds the 10 state columns to parameters at..at+9. */
static void bind_state(sqlite3_stmt *st, int at, const struct redo *r)
{
	sqlite3_bind_int(st, at, r->status);
	sqlite3_bind_int(st, at + 1, r->attempt);
	sqlite3_bind_int64(st, at + 2, r->started_ms);
	sqlite3_bind_int64(st, at + 3, r->finished_ms);
	sqlite3_bind_int64(st, at + 4, r->not_before_ms);
	sqlite3_bind_int64(st, at + 5, r->deadline_ms);
	bind_blob(st, at + 6, r->output, r->output_len);
	bind_text(st, at + 7, r->error);
	bind_text(st, at + 8, r->worker_id);
	sqlite3_bind_int(st, at + 9, r->cancel_requested);
}

static int exec_update(struct sq *s, const struct redo *r)
{
	int rc;
	sqlite3_stmt *st = stmt(s, ST_UPDATE, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	bind_state(st, 2, r);
	rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Inserts the tasks of n (1..PUT_ROWS) fresh entries, each with its spec
 * from p->t and its latest state from p->r, then their large payloads.
 * Returns an SQLite code. */
static int exec_inserts(struct sq *s, struct pend *const *ps, int n)
{
	int rc;
	sqlite3_stmt *st = put_stmt(s, n, &rc);
	if (!st)
		return rc;
	uint8_t *labels[PUT_ROWS];
	for (int i = 0; i < n; i++) {
		const struct task *t = ps[i]->t;
		int at = i * PUT_COLS;
		size_t llen;
		labels[i] = labels_encode(t, &llen);
		sqlite3_bind_text(st, at + 1, t->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, at + 2, t->name, -1, SQLITE_STATIC);
		bind_text(st, at + 3, t->description);
		bind_blob(st, at + 4, t->payload,
		          t->payload_len <= PAYLOAD_INLINE_MAX ? t->payload_len : 0);
		sqlite3_bind_int(st, at + 5, t->priority);
		sqlite3_bind_int(st, at + 6, t->max_attempts);
		sqlite3_bind_int64(st, at + 7, t->timeout_ms);
		bind_text(st, at + 8, t->idempotency_key);
		bind_blob(st, at + 9, labels[i], llen);
		sqlite3_bind_int64(st, at + 10, t->created_ms);
		bind_state(st, at + 11, &ps[i]->r);
	}
	rc = sqlite3_step(st);
	done(st);
	for (int i = 0; i < n; i++)
		free(labels[i]);
	for (int i = 0; rc == SQLITE_DONE && i < n; i++) {
		const struct task *t = ps[i]->t;
		if (t->payload_len <= PAYLOAD_INLINE_MAX)
			continue;
		if (!(st = stmt(s, ST_PUT_PAYLOAD, &rc)))
			return rc;
		sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
		bind_blob(st, 2, t->payload, t->payload_len);
		rc = sqlite3_step(st);
		done(st);
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Opens the batch transaction if none is open. Returns 0 or an error. */
static int begin(struct sq *s)
{
	if (s->in_txn)
		return s->txn_lost ? s->lost_err : 0;
	int rc = run(s, ST_BEGIN);
	if (rc != SQLITE_OK)
		return fail(s, rc, "begin");
	s->in_txn = 1;
	s->txn_lost = 0;
	return 0;
}

/* Inserts the n fresh entries and marks them written. Returns 0 or an
 * error (the batch is then lost). */
static int write_fresh(struct sq *s, struct pend *const *ps, int n)
{
	int rc = exec_inserts(s, ps, n);
	if (rc != SQLITE_OK)
		return abandon(s, write_failed(s, rc, "put"));
	for (int i = 0; i < n; i++) {
		ps[i]->written = ps[i]->inserted = 1;
		s->unwritten--;
	}
	return 0;
}

/* Writes every pending entry not yet written into the open transaction
 * (opening it). Returns 0 or an error (the batch is then lost). */
static int spill(struct sq *s)
{
	if (!s->unwritten)
		return s->in_txn && s->txn_lost ? s->lost_err : 0;
	int err = begin(s);
	if (err < 0)
		return err;
	/* Each entry is a row of its own, so the order does not matter: the
	 * updates as they come, the fresh tasks gathered (in put order, which
	 * is id order) into multi-row INSERTs. */
	struct pend *fresh[PUT_ROWS];
	int nfresh = 0;
	for (size_t i = 0; i < s->npend; i++) {
		struct pend *p = s->pend[i];
		if (p->written)
			continue;
		if (p->t && !p->inserted) {
			fresh[nfresh++] = p;
			if (nfresh == PUT_ROWS) {
				if ((err = write_fresh(s, fresh, nfresh)) < 0)
					return err;
				nfresh = 0;
			}
			continue;
		}
		int rc = exec_update(s, &p->r);
		if (rc != SQLITE_OK)
			return abandon(s, write_failed(s, rc, "update"));
		p->written = 1;
		s->unwritten--;
	}
	return nfresh ? write_fresh(s, fresh, nfresh) : 0;
}

static void ckpt_follow(struct sq *s);

static int sq_flush(struct store *base)
{
	struct sq *s = (struct sq *)base;
	int err = spill(s);
	if (!s->in_txn)
		return err;
	if (!err) {
		int rc = run(s, ST_COMMIT);
		if (rc != SQLITE_OK) {
			err = fail(s, rc, "commit");
			if (!sqlite3_get_autocommit(s->db))
				run(s, ST_ROLLBACK);
		}
	} else if (!sqlite3_get_autocommit(s->db)) {
		run(s, ST_ROLLBACK);
	}
	s->in_txn = 0;
	s->txn_lost = 0;
	s->commits += err == 0;
	pend_settle(s, err == 0);
	if (!err && s->ck)
		ckpt_follow(s);
	if (err)
		log_warn("store_batch_lost", "kept_updates=%zu err=%s", s->npend,
		         log_quote(err_str(err)));
	return err;
}

/* ------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------ */

/* With --max-db-size: a task whose own bytes cannot fit in what is left is
 * refused at once, as the INSERT of the write-through store was; like
 * SQLite on a full disk, that dooms the batch. */
static int too_big(struct sq *s, const struct task *t)
{
	size_t n = t->payload_len + t->output_len + (t->description ? strlen(t->description) : 0);
	if (!s->max_pages || n < 4096)
		return 0;
	int rc;
	sqlite3_stmt *st = stmt(s, ST_PAGES, &rc);
	if (!st)
		return 0;
	int64_t used = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	done(st);
	return (int64_t)n > (s->max_pages - used) * 4096;
}

static int sq_put(struct store *base, const struct task *t)
{
	struct sq *s = (struct sq *)base;
	const char *key = t->idempotency_key && *t->idempotency_key ? t->idempotency_key : NULL;
	if (map_get(&s->by_id, t->id) || (key && map_get(&s->by_key, key))) {
		log_debug("store_duplicate", "task=%s", t->id);
		return -EEXIST;
	}
	/* The lookup runs in the batch transaction, which the flush needs
	 * anyway; a lost batch fails the put at once. */
	int err = begin(s);
	if (err < 0)
		return err;
	/* An id above every id ever stored cannot be taken (ids are
	 * time-ordered, so that is every new one): only a key needs looking
	 * up. "id = NULL" matches nothing. */
	int fresh = strcmp(t->id, s->max_id) > 0;
	if (!fresh || key) {
		int rc;
		sqlite3_stmt *st = stmt(s, ST_EXISTS, &rc);
		if (!st)
			return map_rc(rc);
		bind_text(st, 1, fresh ? NULL : t->id);
		bind_text(st, 2, key);
		rc = sqlite3_step(st);
		done(st);
		if (rc == SQLITE_ROW) {
			/* The batch goes on: a duplicate is the caller's problem. */
			log_debug("store_duplicate", "task=%s", t->id);
			return -EEXIST;
		}
		if (rc != SQLITE_DONE)
			return write_failed(s, rc, "put");
	}
	if (too_big(s, t)) {
		log_error("store_error", "op=put task=%s msg=\"task larger than the room left\"",
		          t->id);
		return abandon(s, -ENOSPC);
	}
	pend_add(s, t, 1);
	if (fresh)
		memcpy(s->max_id, t->id, sizeof s->max_id);
	return 0;
}

static int sq_update(struct store *base, const struct task *t)
{
	struct sq *s = (struct sq *)base;
	/* Kept even when the batch is already lost, so the next one has it. */
	struct pend *p = map_get(&s->by_id, t->id);
	if (!p) {
		pend_add(s, t, 0);
	} else {
		redo_set(&p->r, t);
		if (p->written) {
			p->written = 0;
			s->unwritten++;
		}
	}
	return s->in_txn && s->txn_lost ? s->lost_err : 0;
}

static int get_one(struct sq *s, int which, const char *key, struct task **out)
{
	spill(s); /* a failure is logged; the read sees what is left */
	int rc;
	sqlite3_stmt *st = stmt(s, which, &rc);
	if (!st)
		return map_rc(rc);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = row_task(st);
	done(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return fail(s, rc, "get");
}

static int sq_get(struct store *base, const char *id, struct task **out)
{
	return get_one((struct sq *)base, ST_GET, id, out);
}

static int sq_find_idempotent(struct store *base, const char *key, struct task **out)
{
	return get_one((struct sq *)base, ST_IDEM, key, out);
}

static int sq_load_active(struct store *base, store_task_cb cb, void *arg)
{
	struct sq *s = (struct sq *)base;
	spill(s);
	int rc;
	sqlite3_stmt *st = stmt(s, ST_ACTIVE, &rc);
	if (!st)
		return map_rc(rc);
	return read_rows(s, st, cb, arg);
}

struct list_ctx {
	store_task_cb cb;
	void *arg;
	int limit, n;
	char last[ID_LEN + 1];
	int more;    /* a row beyond the page exists */
	int stopped; /* the caller's callback returned this */
};

/* Passes the first `limit` rows on; the extra row only says "there is a
 * next page". */
static int list_row(struct task *t, void *arg)
{
	struct list_ctx *c = arg;
	if (c->n == c->limit) {
		c->more = 1;
		task_del(t);
		return 1;
	}
	c->n++;
	memcpy(c->last, t->id, sizeof c->last);
	c->stopped = c->cb(t, c->arg);
	return c->stopped;
}

static int sq_list(struct store *base, const struct store_filter *f, store_task_cb cb, void *arg,
                   char next_token[ID_LEN + 1])
{
	struct sq *s = (struct sq *)base;
	static const struct store_filter all;
	if (!f)
		f = &all;
	const char *token = f->page_token && *f->page_token ? f->page_token : NULL;
	if (token && !id_valid(token))
		return -EINVAL;
	int by_status = f->status != TASK_UNSPECIFIED;
	int by_name = f->name && *f->name;
	int active = f->status == TASK_PENDING || f->status == TASK_RUNNING;
	int which = by_status ? (by_name ? ST_LIST_BOTH : active ? ST_LIST_ACTIVE : ST_LIST_STATUS)
	                      : (by_name ? ST_LIST_NAME : ST_LIST_ALL);
	spill(s);
	int rc;
	sqlite3_stmt *st = stmt(s, which, &rc);
	if (!st)
		return map_rc(rc);
	struct list_ctx c = {cb, arg, f->page_size, 0, "", 0, 0};
	if (c.limit <= 0)
		c.limit = STORE_PAGE_DEFAULT;
	if (c.limit > STORE_PAGE_MAX)
		c.limit = STORE_PAGE_MAX;
	if (by_status)
		sqlite3_bind_int(st, 1, f->status);
	if (by_name)
		sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
	/* '~' sorts after every id character, so "id < '~'" is every id. */
	sqlite3_bind_text(st, 3, token ? token : "~", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, c.limit + 1);
	sqlite3_bind_int(st, 9, f->with_payload != 0);
	int r = read_rows(s, st, list_row, &c);
	if (c.stopped)
		return c.stopped;
	if (r < 0)
		return r;
	if (c.more)
		memcpy(next_token, c.last, ID_LEN + 1);
	return c.n;
}

static int sq_purge(struct store *base, int64_t before_ms, int max_rows)
{
	struct sq *s = (struct sq *)base;
	int err = spill(s); /* so that it sees the batch's final states */
	if (err == 0)
		err = begin(s);
	if (err < 0)
		return err;
	int rc;
	sqlite3_stmt *st = stmt(s, ST_PURGE, &rc);
	if (!st)
		return map_rc(rc);
	char bound[ID_LEN + 1];
	id_first_at(before_ms, bound);
	sqlite3_bind_int64(st, 1, before_ms);
	sqlite3_bind_int(st, 2, max_rows > 0 ? max_rows : -1);
	sqlite3_bind_text(st, 3, bound, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return write_failed(s, rc, "purge");
	int64_t n = sqlite3_changes64(s->db);
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* ------------------------------------------------------------------------
 * Checkpoints
 *
 * SQLite's auto-checkpoint runs inside the commit that crosses 1,000 WAL
 * pages: about every 1,700 tasks a commit copied the WAL back and ran two
 * fdatasync (~4 ms each), and every task in flight waited. The writer's
 * auto-checkpoint is replaced by a WAL hook that only counts pages, and
 * store_maintain() checkpoints from the scheduler's tick: when the store
 * was idle for a tick, or when the WAL has grown past wal_max_pages under
 * steady load. Crash safety is unchanged: an un-checkpointed WAL is
 * replayed when the database is opened.
 *
 * Under load the checkpointer, a thread with its own connection, copies
 * the WAL back: 64 MiB took 50-120 ms, and on the loop thread every task
 * in flight waited that long. In WAL mode a PASSIVE checkpoint from another
 * connection runs beside the writer (it takes no write lock). But the
 * writer restarts the WAL from its start only when a transaction begins
 * with the whole WAL copied, and commits go on while the checkpointer
 * copies: it never catches up alone. So it copies in passes until one
 * finds at most WAL_TAIL_PAGES new frames, and the loop then copies that
 * short tail itself, right after its next commit (waiting for the next
 * tick would let another 100 ms of frames pile up); the commit after that
 * restarts the WAL. The idle TRUNCATE stays on the loop too: nothing waits
 * for an idle store, and it takes the write lock, which the loop's own
 * commits would otherwise have to wait for.
 *
 * A checkpointer starved of CPU or disk falls behind, and the WAL would
 * grow without bound (to 240 MiB in a test that wrote 64 MiB). Past
 * WAL_HARD_FACTOR times the limit the loop therefore waits for the
 * checkpointer and copies the rest itself: a stall under overload, but the
 * disk the WAL takes stays bounded.
 * ------------------------------------------------------------------------ */

#define WAL_IDLE_PAGES 1        /* idle: checkpoint (and truncate) any WAL */
#define WAL_MAX_BYTES (64 << 20) /* busy: checkpoint past 64 MiB of WAL */
#define WAL_TAIL_PAGES 256      /* a tail short enough for the loop */
#define CKPT_PASSES 8           /* bounds the checkpointer's catching up */
#define WAL_HARD_FACTOR 4       /* past this many limits the loop waits */

/* Shared between the loop and the checkpointer, under mu. */
struct ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* the thread waits on it for work */
	pthread_cond_t done; /* the loop waits on it for a checkpoint's end */
	sqlite3 *db;   /* its own connection; only the thread uses it once started */
	int want;      /* a checkpoint was asked for and has not finished */
	int stop;      /* the store is closing */
	int ran;       /* a checkpoint finished since the loop last looked */
	int rc;        /* the last checkpoint's SQLite result, until reported */
	int sys;       /* its errno, for report() */
	char msg[128]; /* its message */
};

static void *ckpt_main(void *arg)
{
	struct ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->want && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->mu);
		int rc = SQLITE_OK, seen = 0;
		for (int pass = 0; rc == SQLITE_OK && pass < CKPT_PASSES; pass++) {
			int log_pages = 0;
			rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
			                               &log_pages, NULL);
			if (rc == SQLITE_OK && log_pages < 0)
				rc = SQLITE_ERROR; /* the connection is not in WAL mode */
			if (log_pages - seen <= WAL_TAIL_PAGES)
				break;
			seen = log_pages;
		}
		int sys = (rc & 0xff) == SQLITE_IOERR ? last_errno(c->db) : 0;
		pthread_mutex_lock(&c->mu);
		c->ran = rc == SQLITE_OK;
		c->rc = rc;
		c->sys = sys;
		snprintf(c->msg, sizeof c->msg, "%s", sqlite3_errmsg(c->db));
		c->want = 0;
		pthread_cond_signal(&c->done);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Stops and joins the checkpointer (waiting for a checkpoint it runs),
 * closes its connection and frees it; NULL is a no-op. */
static void ckpt_del(struct ckpt *c, int started)
{
	if (!c)
		return;
	if (started) {
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	}
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->mu);
	sqlite3_close_v2(c->db);
	free(c);
}

/* Starts the checkpointer on its own connection to s's database. Without
 * one (an SQLite built single-threaded, or no thread or connection to be
 * had) the loop checkpoints, as before: s->ck stays NULL. */
static void ckpt_start(struct sq *s)
{
	if (!sqlite3_threadsafe())
		return;
	struct ckpt *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->done, NULL);
	int rc = sqlite3_open_v2(s->path, &c->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	                         NULL);
	/* A connection learns that the database is in WAL mode when it first
	 * reads it; until then it would checkpoint nothing. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if (rc != SQLITE_OK || pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
		log_warn("store_checkpointer_unavailable", "path=%s sqlite=%d", log_quote(s->path),
		         rc);
		ckpt_del(c, 0);
		return;
	}
	s->ck = c;
}

/* Asks the checkpointer for a checkpoint. */
static void ckpt_ask(struct ckpt *c)
{
	pthread_mutex_lock(&c->mu);
	c->want = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Reports the result of the checkpointer's last checkpoint, once: sets
 * *busy if one is running, else *ran if one finished since the last call.
 * Returns 0 or that checkpoint's error. */
static int ckpt_collect(struct ckpt *c, int *busy, int *ran)
{
	pthread_mutex_lock(&c->mu);
	int rc = SQLITE_OK, sys = 0;
	char msg[sizeof c->msg];
	*busy = c->want;
	*ran = 0;
	if (!c->want) {
		rc = c->rc;
		sys = c->sys;
		memcpy(msg, c->msg, sizeof msg);
		*ran = c->ran;
		c->rc = SQLITE_OK;
		c->ran = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc == SQLITE_OK ? 0 : report(rc, sys, "checkpoint", msg);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct sq *s = arg;
	s->wal_pages = pages;
	return SQLITE_OK;
}

/* Checkpoints on the store's own connection, on the loop thread, in mode
 * (SQLITE_CHECKPOINT_*). Returns 0 or an error (logged). */
static int checkpoint_here(struct sq *s, int mode)
{
	int log_pages = 0, done_pages = 0;
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, mode, &log_pages, &done_pages);
	if (rc != SQLITE_OK)
		return fail(s, rc, "checkpoint");
	log_debug("store_checkpoint", "mode=%s wal_pages=%d copied=%d",
	          mode == SQLITE_CHECKPOINT_TRUNCATE ? "truncate" : "passive", log_pages,
	          done_pages);
	if (mode == SQLITE_CHECKPOINT_TRUNCATE || done_pages == log_pages)
		s->wal_pages = 0;
	return 0;
}

/* Waits until the checkpointer has no checkpoint running. */
static void ckpt_wait(struct ckpt *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->want)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

/* After a commit: once the checkpointer has copied all but a short tail,
 * copies the tail; past the hard limit, waits for it and copies the rest.
 * Errors are logged; the commit stands. */
static void ckpt_follow(struct sq *s)
{
	int busy = 0, ran = 0;
	int over = s->wal_pages / WAL_HARD_FACTOR >= s->wal_max_pages;
	if (over) {
		log_debug("store_wal_over", "wal_pages=%d", s->wal_pages);
		ckpt_wait(s->ck);
	}
	ckpt_collect(s->ck, &busy, &ran);
	if (ran || over)
		checkpoint_here(s, SQLITE_CHECKPOINT_PASSIVE);
}

static int sq_maintain(struct store *base)
{
	struct sq *s = (struct sq *)base;
	int idle = s->commits == s->commits_seen;
	s->commits_seen = s->commits;
	if (s->in_txn)
		return 0;
	int busy = 0, ran = 0;
	int err = s->ck ? ckpt_collect(s->ck, &busy, &ran) : 0;
	/* A TRUNCATE beside the checkpointer's checkpoint would fail busy: a
	 * later idle tick does it. */
	if (busy)
		return err;
	int due = s->wal_pages >= (idle ? WAL_IDLE_PAGES : s->wal_max_pages);
	if (s->ck && !idle && !ran) {
		if (due)
			ckpt_ask(s->ck);
		return err;
	}
	if (!due && !ran)
		return err;
	/* TRUNCATE when idle also gives the WAL file's space back. PASSIVE
	 * under load, the checkpointer's tail (or all, without one): it never
	 * waits, and the next writer restarts the WAL from its start once it
	 * is all copied. */
	int here = checkpoint_here(s, idle ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE);
	return err ? err : here;
}

/* ------------------------------------------------------------------------
 * Open and close
 * ------------------------------------------------------------------------ */

static void sq_del(struct store *base)
{
	struct sq *s = (struct sq *)base;
	/* First, so that the store's own connection closes last (checkpointing
	 * what is left) and the last flush leaves the tail to it. */
	ckpt_del(s->ck, 1);
	s->ck = NULL;
	if (s->db) {
		if (s->in_txn || s->npend)
			sq_flush(base);
		for (int i = 0; i < ST_COUNT; i++)
			sqlite3_finalize(s->st[i]);
		for (int i = 0; i < PUT_ROWS; i++)
			sqlite3_finalize(s->put[i]);
		sqlite3_close_v2(s->db);
	}
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->unwritten = 0;
	pend_settle(s, 1);
	free(s->pend);
	free(s->path);
	free(s);
}

/* mkdir -p with mode 0700 for what it creates. Returns 0 or -errno. */
static int mkdirs(const char *dir)
{
	if (!dir || !*dir)
		return -EINVAL;
	char *p = xstrdup(dir);
	int err = 0;
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char save = *c;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			err = -errno;
			break;
		}
		*c = save;
		if (!save)
			break;
	}
	free(p);
	if (err)
		return err;
	struct stat sb;
	if (stat(dir, &sb) < 0)
		return -errno;
	return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

/* Returns the schema version stored in the database, 0 for a new one, or
 * a negative error. */
static int schema_version(struct sq *s)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db,
	                            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	                            " AND name = 'schema_version'",
	                            -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "schema");
	rc = sqlite3_step(st);
	int exists = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail(s, rc, "schema");
	if (!exists)
		return 0;
	rc = sqlite3_prepare_v2(s->db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "schema");
	rc = sqlite3_step(st);
	int v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail(s, rc, "schema");
	return v;
}

static int migrate(struct sq *s)
{
	int v = schema_version(s);
	if (v < 0)
		return v;
	if (v > SCHEMA_VERSION) {
		log_error("store_schema_too_new", "path=%s version=%d supported=%d",
		          log_quote(s->path), v, SCHEMA_VERSION);
		return E_UNSUPPORTED;
	}
	if (v == SCHEMA_VERSION)
		return 0;
	int rc = exec(s, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return map_rc(rc);
	if (v == 0)
		rc = exec(s, "CREATE TABLE schema_version (version INTEGER NOT NULL)");
	for (int i = v; rc == SQLITE_OK && i < SCHEMA_VERSION; i++) {
		rc = exec(s, migrations[i]);
		if (rc == SQLITE_OK)
			log_info("store_migrated", "path=%s version=%d", log_quote(s->path), i + 1);
	}
	if (rc == SQLITE_OK) {
		char q[96];
		snprintf(q, sizeof q,
		         "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
		         SCHEMA_VERSION);
		rc = exec(s, q);
	}
	if (rc == SQLITE_OK)
		rc = exec(s, "COMMIT");
	if (rc != SQLITE_OK) {
		if (!sqlite3_get_autocommit(s->db))
			exec(s, "ROLLBACK");
		return map_rc(rc);
	}
	return 0;
}

static int configure(struct sq *s, const struct store_sqlite_options *opt)
{
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		log_error("store_read_only", "path=%s", log_quote(s->path));
		return -EROFS;
	}
	sqlite3_busy_timeout(s->db, 2000);
	/* The journal mode is answered as a row; anything but "wal" means
	 * SQLite could not switch (e.g. a read-only directory). */
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "journal_mode");
	rc = sqlite3_step(st);
	const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	int wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail(s, rc, "journal_mode");
	if (!wal) {
		log_error("store_error", "op=journal_mode msg=\"cannot switch to WAL\" path=%s",
		          log_quote(s->path));
		return -EROFS;
	}
	char q[128];
	snprintf(q, sizeof q, "PRAGMA synchronous = %s; PRAGMA temp_store = MEMORY",
	         opt->sync_full ? "FULL" : "NORMAL");
	rc = exec(s, q);
	sqlite3_wal_hook(s->db, wal_hook, s); /* replaces the auto-checkpoint */
	int64_t wal_max = opt->wal_max_bytes > 0 ? opt->wal_max_bytes : WAL_MAX_BYTES;
	s->wal_max_pages = wal_max / 4096 < INT_MAX ? (int)(wal_max / 4096) : INT_MAX;
	if (rc == SQLITE_OK && opt->max_db_bytes > 0) {
		/* SQLite counts pages (4 KiB by default); round down, but
		 * keep room for the schema. */
		int64_t pages = opt->max_db_bytes / 4096;
		s->max_pages = pages > 8 ? pages : 8;
		snprintf(q, sizeof q, "PRAGMA max_page_count = %lld",
		         (long long)(pages > 8 ? pages : 8));
		rc = exec(s, q);
	}
	return rc == SQLITE_OK ? 0 : map_rc(rc);
}

/* Reads the greatest stored id into s->max_id ("" for an empty table). */
static int load_max_id(struct sq *s)
{
	int rc;
	sqlite3_stmt *st = stmt(s, ST_MAX_ID, &rc);
	if (!st)
		return map_rc(rc);
	rc = sqlite3_step(st);
	const char *id = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	snprintf(s->max_id, sizeof s->max_id, "%s", id ? id : "");
	done(st);
	return rc == SQLITE_ROW ? 0 : fail(s, rc, "max_id");
}

int store_open_sqlite(const char *dir, const struct store_sqlite_options *opt, struct store **out)
{
	static const struct store_sqlite_options defaults;
	/* SQLite counts every allocation for sqlite3_status(), under a global
	 * mutex; nothing in orchd asks, and the counting was 7 % of a task's
	 * store instructions. Only possible before SQLite first initialises
	 * (later calls fail harmlessly), and process-wide: the store is the
	 * process's only SQLite user. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	*out = NULL;
	if (!opt)
		opt = &defaults;
	int err = mkdirs(dir);
	if (err < 0) {
		log_error("store_open_failed", "dir=%s err=%s", log_quote(dir),
		          log_quote(err_str(err)));
		return err;
	}
	struct sq *s = xcalloc(1, sizeof *s);
	s->base.ops = &sqlite_ops;
	s->lock_fd = -1;

	size_t n = strlen(dir) + 16;
	char *lock = xmalloc(n);
	snprintf(lock, n, "%s/orchd.lock", dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		err = -errno;
	} else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
	}
	free(lock);
	if (err < 0) {
		log_error("store_open_failed", "dir=%s err=%s%s", log_quote(dir),
		          log_quote(err_str(err)),
		          err == -EBUSY ? " reason=\"data dir in use by another scheduler\"" : "");
		sq_del(&s->base);
		return err;
	}

	s->path = xmalloc(n);
	snprintf(s->path, n, "%s/orchd.db", dir);
	int rc = sqlite3_open_v2(s->path, &s->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	                             SQLITE_OPEN_EXRESCODE,
	                         NULL);
	if (rc != SQLITE_OK)
		err = fail(s, rc, "open");
	if (!err)
		err = configure(s, opt);
	if (!err)
		err = migrate(s);
	if (!err)
		err = load_max_id(s);
	if (!err)
		ckpt_start(s);
	if (err < 0) {
		log_error("store_open_failed", "path=%s err=%s", log_quote(s->path),
		          log_quote(err_str(err)));
		sq_del(&s->base);
		return err;
	}
	log_info("store_opened", "path=%s schema=%d sync=%s", log_quote(s->path), SCHEMA_VERSION,
	         opt->sync_full ? "full" : "normal");
	*out = &s->base;
	return 0;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .del = sq_del,
    .put = sq_put,
    .update = sq_update,
    .flush = sq_flush,
    .get = sq_get,
    .find_idempotent = sq_find_idempotent,
    .load_active = sq_load_active,
    .list = sq_list,
    .purge = sq_purge,
    .maintain = sq_maintain,
};
