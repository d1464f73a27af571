/* Unit tests for lib/store (SQLite backend): round trips, persistence across
 * a restart and a crash, group-commit visibility, idempotency, pagination,
 * retention, and the errors for a locked, read-only, full or too-new
 * data directory. Each test works in its own directory under /tmp. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "store.h"

#define T0 1700000000000LL

static char tmp[64];
static char dir[128];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	log_set_level(LOG_OFF);
	snprintf(tmp, sizeof tmp, "/tmp/orchd-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	/* A nested path, so the store has to create the parents itself. */
	snprintf(dir, sizeof dir, "%s/data/sub", tmp);
}

static void teardown(void)
{
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_store(void)
{
	struct store *s;
	ck_assert_int_eq(store_open_sqlite(dir, NULL, &s), 0);
	return s;
}

static struct task *mk(const char *name, int64_t created)
{
	struct task *t = task_new(NULL, name, created);
	return t;
}

/* A second, independent connection: what another process would see. */
static sqlite3 *raw(void)
{
	char path[192];
	snprintf(path, sizeof path, "%s/orchd.db", dir);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

static long long raw_int(sqlite3 *db, const char *q)
{
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

struct collect {
	struct task *t[2000];
	int n;
};

static int collect(struct task *t, void *arg)
{
	struct collect *c = arg;
	c->t[c->n++] = t;
	return 0;
}

static void collect_free(struct collect *c)
{
	for (int i = 0; i < c->n; i++)
		task_del(c->t[i]);
	c->n = 0;
}

START_TEST(put_then_get_round_trips_every_field)
{
	struct store *s = open_store();
	struct task *t = mk("resize", T0);
	task_set_str(&t->description, "thumbnail");
	task_set_bytes(&t->payload, &t->payload_len, "\x00\xff\x00", 3);
	t->priority = -7;
	t->max_attempts = 5;
	t->timeout_ms = 1234;
	task_set_str(&t->idempotency_key, "key-1");
	task_add_label(t, "team", "imaging");
	task_add_label(t, "empty", "");
	ck_assert_int_eq(store_put(s, t), 0);
	struct task_ev e = {.worker_id = "w1"};
	task_transition(t, TASK_EV_ASSIGN, &e, T0 + 5);
	e.output = "out";
	e.output_len = 3;
	task_transition(t, TASK_EV_COMPLETE, &e, T0 + 9);
	ck_assert_int_eq(store_update(s, t), 0);
	ck_assert_int_eq(store_flush(s), 0);

	struct task *g;
	ck_assert_int_eq(store_get(s, t->id, &g), 0);
	ck_assert_str_eq(g->id, t->id);
	ck_assert_str_eq(g->name, "resize");
	ck_assert_str_eq(g->description, "thumbnail");
	ck_assert_uint_eq(g->payload_len, 3);
	ck_assert_mem_eq(g->payload, "\x00\xff\x00", 3);
	ck_assert_int_eq(g->priority, -7);
	ck_assert_int_eq(g->max_attempts, 5);
	ck_assert_int_eq(g->timeout_ms, 1234);
	ck_assert_str_eq(g->idempotency_key, "key-1");
	ck_assert_uint_eq(g->nlabels, 2);
	ck_assert_str_eq(task_label(g, "team"), "imaging");
	ck_assert_str_eq(task_label(g, "empty"), "");
	ck_assert_int_eq(g->status, TASK_COMPLETED);
	ck_assert_int_eq(g->attempt, 1);
	ck_assert_int_eq(g->created_ms, T0);
	ck_assert_int_eq(g->started_ms, T0 + 5);
	ck_assert_int_eq(g->finished_ms, T0 + 9);
	ck_assert_uint_eq(g->output_len, 3);
	ck_assert_mem_eq(g->output, "out", 3);
	ck_assert_ptr_null(g->error);
	ck_assert_str_eq(g->worker_id, "w1");
	task_del(g);

	ck_assert_int_eq(store_get(s, "0000000000000000000000000Z", &g), -ENOENT);
	ck_assert_ptr_null(g);
	task_del(t);
	store_del(s);
	store_del(NULL);
}
END_TEST

START_TEST(state_survives_close_and_reopen)
{
	struct store *s = open_store();
	struct task *t[6];
	for (int i = 0; i < 6; i++) {
		t[i] = mk(i % 2 ? "odd" : "even", T0 + i);
		ck_assert_int_eq(store_put(s, t[i]), 0);
	}
	ck_assert_int_eq(store_flush(s), 0);
	struct task_ev w = {.worker_id = "w1"};
	task_transition(t[1], TASK_EV_ASSIGN, &w, T0 + 10);   /* RUNNING */
	task_transition(t[2], TASK_EV_CANCEL, NULL, T0 + 10); /* CANCELLED */
	task_transition(t[3], TASK_EV_ASSIGN, &w, T0 + 10);
	task_transition(t[3], TASK_EV_FAIL, NULL, T0 + 11); /* PENDING, attempt 1 */
	task_transition(t[4], TASK_EV_ASSIGN, &w, T0 + 10);
	task_transition(t[4], TASK_EV_COMPLETE, NULL, T0 + 12); /* COMPLETED */
	for (int i = 1; i < 5; i++)
		ck_assert_int_eq(store_update(s, t[i]), 0);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);

	s = open_store();
	struct collect c = {.n = 0};
	ck_assert_int_eq(store_load_active(s, collect, &c), 4);
	/* Pending and running ones, oldest first. */
	ck_assert_str_eq(c.t[0]->id, t[0]->id);
	ck_assert_str_eq(c.t[1]->id, t[1]->id);
	ck_assert_int_eq(c.t[1]->status, TASK_RUNNING);
	ck_assert_str_eq(c.t[1]->worker_id, "w1");
	ck_assert_str_eq(c.t[2]->id, t[3]->id);
	ck_assert_int_eq(c.t[2]->attempt, 1);
	ck_assert_int_eq(c.t[2]->not_before_ms, t[3]->not_before_ms);
	ck_assert_str_eq(c.t[3]->id, t[5]->id);
	collect_free(&c);
	/* Finished ones are still there by id. */
	struct task *g;
	ck_assert_int_eq(store_get(s, t[4]->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_COMPLETED);
	task_del(g);
	ck_assert_int_eq(store_get(s, t[2]->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_CANCELLED);
	task_del(g);
	store_del(s);
	for (int i = 0; i < 6; i++)
		task_del(t[i]);
}
END_TEST

START_TEST(crash_keeps_flushed_and_drops_unflushed)
{
	char flushed[ID_LEN + 1], unflushed[ID_LEN + 1];
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The "scheduler": dies without closing anything, like kill -9. */
		struct store *s;
		if (store_open_sqlite(dir, NULL, &s) < 0)
			_exit(1);
		struct task *a = mk("a", T0), *b = mk("b", T0 + 1);
		if (store_put(s, a) || store_flush(s))
			_exit(2);
		struct task_ev w = {.worker_id = "w1"};
		task_transition(a, TASK_EV_ASSIGN, &w, T0 + 2);
		if (store_put(s, b) || store_update(s, a))
			_exit(3);
		if (write(pipefd[1], a->id, ID_LEN) != ID_LEN ||
		    write(pipefd[1], b->id, ID_LEN) != ID_LEN)
			_exit(4);
		_exit(0);
	}
	close(pipefd[1]);
	ck_assert_int_eq(read(pipefd[0], flushed, ID_LEN), ID_LEN);
	ck_assert_int_eq(read(pipefd[0], unflushed, ID_LEN), ID_LEN);
	flushed[ID_LEN] = unflushed[ID_LEN] = '\0';
	close(pipefd[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	struct store *s = open_store(); /* the lock died with the process */
	struct task *g;
	ck_assert_int_eq(store_get(s, flushed, &g), 0);
	ck_assert_int_eq(g->status, TASK_PENDING); /* the update was not flushed */
	task_del(g);
	ck_assert_int_eq(store_get(s, unflushed, &g), -ENOENT);
	store_del(s);
}
END_TEST

START_TEST(writes_are_visible_to_others_only_after_flush)
{
	struct store *s = open_store();
	sqlite3 *db = raw();
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	struct task *t[3];
	for (int i = 0; i < 3; i++) {
		t[i] = mk("a", T0 + i);
		ck_assert_int_eq(store_put(s, t[i]), 0);
	}
	/* The scheduler reads its own batch... */
	struct task *g;
	ck_assert_int_eq(store_get(s, t[2]->id, &g), 0);
	task_del(g);
	/* ...nobody else does until the flush: one commit for all three. */
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks"), 0);
	ck_assert_int_eq(store_flush(s), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks"), 3);
	ck_assert_int_eq(store_flush(s), 0); /* nothing to do is fine */
	sqlite3_close(db);
	store_del(s);
	for (int i = 0; i < 3; i++)
		task_del(t[i]);
}
END_TEST

START_TEST(idempotency_key_finds_the_first_task)
{
	struct store *s = open_store();
	struct task *a = mk("a", T0), *b = mk("a", T0 + 1), *c = mk("a", T0 + 2);
	task_set_str(&a->idempotency_key, "order-42");
	task_set_str(&b->idempotency_key, "order-42");
	ck_assert_int_eq(store_put(s, a), 0);
	ck_assert_int_eq(store_put(s, b), -EEXIST);
	/* A refused put leaves the rest of the batch alone. */
	ck_assert_int_eq(store_put(s, c), 0);
	ck_assert_int_eq(store_put(s, c), -EEXIST); /* same id */
	ck_assert_int_eq(store_flush(s), 0);
	struct task *g;
	ck_assert_int_eq(store_find_idempotent(s, "order-42", &g), 0);
	ck_assert_str_eq(g->id, a->id);
	task_del(g);
	ck_assert_int_eq(store_find_idempotent(s, "order-43", &g), -ENOENT);
	ck_assert_int_eq(store_find_idempotent(s, "", &g), -ENOENT);
	ck_assert_int_eq(store_find_idempotent(s, NULL, &g), -ENOENT);
	ck_assert_int_eq(store_get(s, c->id, &g), 0);
	task_del(g);
	ck_assert_int_eq(store_get(s, b->id, &g), -ENOENT);
	/* Tasks without a key never collide. */
	struct task *d = mk("a", T0 + 3), *e = mk("a", T0 + 4);
	ck_assert_int_eq(store_put(s, d), 0);
	ck_assert_int_eq(store_put(s, e), 0);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);
	task_del(a);
	task_del(b);
	task_del(c);
	task_del(d);
	task_del(e);
}
END_TEST

/* A put skips the table lookup for an id above every stored one, so a
 * taken id must still be found by the lookup: below the greatest, equal to
 * it, and after a restart (the greatest read back from the table); and a
 * new id still collides by idempotency key with a stored task. */
START_TEST(put_of_a_taken_id_is_refused_after_flush_and_restart)
{
	struct store *s = open_store();
	struct task *a = task_new("01ARZ3NDEKTSV4RRFFQ69G5FAV", "a", T0);
	struct task *b = task_new("01ARZ3NDEKTSV4RRFFQ69G5FAW", "a", T0);
	task_set_str(&a->idempotency_key, "order-7");
	ck_assert_int_eq(store_put(s, b), 0);
	ck_assert_int_eq(store_put(s, a), 0); /* below the greatest: looked up */
	ck_assert_int_eq(store_flush(s), 0);
	ck_assert_int_eq(store_put(s, a), -EEXIST);
	ck_assert_int_eq(store_put(s, b), -EEXIST);
	struct task *c = mk("a", T0 + 1); /* a new id, above both */
	task_set_str(&c->idempotency_key, "order-7");
	ck_assert_int_eq(store_put(s, c), -EEXIST);
	store_del(s);

	s = open_store();
	ck_assert_int_eq(store_put(s, b), -EEXIST);
	ck_assert_int_eq(store_put(s, a), -EEXIST);
	ck_assert_int_eq(store_put(s, c), -EEXIST);
	task_set_str(&c->idempotency_key, NULL);
	ck_assert_int_eq(store_put(s, c), 0);
	ck_assert_int_eq(store_put(s, c), -EEXIST);
	ck_assert_int_eq(store_flush(s), 0);
	ck_assert_int_eq(store_put(s, c), -EEXIST);
	store_del(s);
	task_del(a);
	task_del(b);
	task_del(c);
}
END_TEST

static int list_all(struct store *s, struct store_filter f, struct collect *out)
{
	char token[ID_LEN + 1] = "";
	int pages = 0;
	do {
		f.page_token = token;
		struct collect page = {.n = 0};
		char next[ID_LEN + 1];
		int n = store_list(s, &f, collect, &page, next);
		ck_assert_int_eq(n, page.n);
		ck_assert_int_le(n, f.page_size > 0 ? f.page_size : STORE_PAGE_DEFAULT);
		for (int i = 0; i < page.n; i++)
			out->t[out->n++] = page.t[i];
		memcpy(token, next, sizeof token);
		pages++;
	} while (token[0]);
	return pages;
}

START_TEST(list_pages_newest_first_with_filters)
{
	enum { N = 250 };
	struct store *s = open_store();
	struct task *t[N];
	for (int i = 0; i < N; i++) {
		t[i] = mk(i % 2 ? "odd" : "even", T0 + i);
		task_set_bytes(&t[i]->payload, &t[i]->payload_len, "p", 1);
		if (i % 5 == 0)
			task_transition(t[i], TASK_EV_CANCEL, NULL, T0 + i);
		ck_assert_int_eq(store_put(s, t[i]), 0);
	}
	/* Unflushed writes are listed too: same connection. */
	struct collect all = {.n = 0};
	struct store_filter f = {.page_size = 100};
	ck_assert_int_eq(list_all(s, f, &all), 3);
	ck_assert_int_eq(all.n, N);
	for (int i = 0; i < N; i++)
		ck_assert_str_eq(all.t[i]->id, t[N - 1 - i]->id);
	ck_assert_ptr_null(all.t[0]->payload); /* not asked for */
	collect_free(&all);

	f.with_payload = 1;
	f.status = TASK_CANCELLED;
	f.page_size = 7;
	list_all(s, f, &all);
	ck_assert_int_eq(all.n, N / 5);
	for (int i = 0; i < all.n; i++) {
		ck_assert_int_eq(all.t[i]->status, TASK_CANCELLED);
		ck_assert_mem_eq(all.t[i]->payload, "p", 1);
		if (i)
			ck_assert_str_lt(all.t[i]->id, all.t[i - 1]->id);
	}
	collect_free(&all);

	struct store_filter by_name = {.name = "odd"};
	list_all(s, by_name, &all);
	ck_assert_int_eq(all.n, N / 2);
	collect_free(&all);

	struct store_filter both = {.name = "even", .status = TASK_PENDING, .page_size = 10};
	list_all(s, both, &all);
	/* Even indexes not divisible by 5: 125 even, 25 of them multiples of 10. */
	ck_assert_int_eq(all.n, 100);
	collect_free(&all);

	/* An exactly full last page gives an empty token, not an empty page. */
	struct store_filter exact = {.name = "odd", .page_size = 125};
	ck_assert_int_eq(list_all(s, exact, &all), 1);
	collect_free(&all);

	char next[ID_LEN + 1];
	struct store_filter bad = {.page_token = "not-a-token"};
	ck_assert_int_eq(store_list(s, &bad, collect, &all, next), -EINVAL);
	struct store_filter huge = {.page_size = 1 << 30};
	ck_assert_int_eq(store_list(s, &huge, collect, &all, next), N); /* capped at 1000 */
	collect_free(&all);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);
	for (int i = 0; i < N; i++)
		task_del(t[i]);
}
END_TEST

START_TEST(purge_removes_only_old_finished_tasks)
{
	struct store *s = open_store();
	struct task *t[10];
	for (int i = 0; i < 10; i++) {
		/* The purge bounds its walk by id: ids as made at creation. */
		char id[ID_LEN + 1];
		id_first_at(T0 - 100 + i, id);
		t[i] = task_new(id, "a", T0 - 100 + i);
		if (i < 8) /* finished at T0 + i */
			task_transition(t[i], TASK_EV_CANCEL, NULL, T0 + i);
		ck_assert_int_eq(store_put(s, t[i]), 0);
	}
	ck_assert_int_eq(store_flush(s), 0);
	/* In bounded steps: 2, 2, then the last one, then nothing. */
	ck_assert_int_eq(store_purge(s, T0 + 5, 2), 2);
	ck_assert_int_eq(store_purge(s, T0 + 5, 2), 2);
	ck_assert_int_eq(store_purge(s, T0 + 5, 2), 1);
	ck_assert_int_eq(store_purge(s, T0 + 5, 2), 0);
	ck_assert_int_eq(store_flush(s), 0);
	struct task *g;
	for (int i = 0; i < 10; i++) {
		int r = store_get(s, t[i]->id, &g);
		ck_assert_int_eq(r, i < 5 ? -ENOENT : 0);
		task_del(g);
	}
	ck_assert_int_eq(store_purge(s, T0 + 1000, 0), 3);
	ck_assert_int_eq(store_flush(s), 0);
	/* Pending tasks are never purged. */
	struct collect c = {.n = 0};
	ck_assert_int_eq(store_load_active(s, collect, &c), 2);
	collect_free(&c);
	/* Updating a purged task is not an error. */
	ck_assert_int_eq(store_update(s, t[0]), 0);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);
	for (int i = 0; i < 10; i++)
		task_del(t[i]);
}
END_TEST

START_TEST(second_scheduler_on_the_same_dir_is_refused)
{
	struct store *s = open_store(), *s2 = NULL;
	ck_assert_int_eq(store_open_sqlite(dir, NULL, &s2), -EBUSY);
	ck_assert_ptr_null(s2);
	store_del(s);
	s = open_store(); /* the lock is released on close */
	store_del(s);
}
END_TEST

START_TEST(read_only_dir_is_reported)
{
	/* root ignores permissions, so drop to nobody for the attempt. */
	char ro[160];
	snprintf(ro, sizeof ro, "%s/ro", tmp);
	ck_assert_int_eq(chmod(tmp, 0755), 0);
	ck_assert_int_eq(mkdir(ro, 0555), 0);
	int was_root = geteuid() == 0;
	if (was_root)
		ck_assert_int_eq(seteuid(65534), 0);
	struct store *s = NULL;
	int r = store_open_sqlite(ro, NULL, &s);
	char sub[192];
	snprintf(sub, sizeof sub, "%s/deeper", ro);
	int r2 = store_open_sqlite(sub, NULL, &s);
	if (was_root)
		ck_assert_int_eq(seteuid(0), 0);
	ck_assert_msg(r == -EACCES || r == -EROFS, "got %d (%s)", r, err_str(r));
	ck_assert_msg(r2 == -EACCES || r2 == -EROFS, "got %d (%s)", r2, err_str(r2));
	ck_assert_ptr_null(s);

	/* A path through a regular file cannot be a data dir. */
	char file[160];
	snprintf(file, sizeof file, "%s/plain", tmp);
	FILE *fp = fopen(file, "w");
	fclose(fp);
	ck_assert_int_eq(store_open_sqlite(file, NULL, &s), -ENOTDIR);
	ck_assert_int_eq(store_open_sqlite("", NULL, &s), -EINVAL);
}
END_TEST

START_TEST(full_disk_fails_the_batch_but_keeps_updates)
{
	struct store_sqlite_options opt = {.max_db_bytes = 256 * 1024};
	struct store *s;
	ck_assert_int_eq(store_open_sqlite(dir, &opt, &s), 0);
	struct task *a = mk("a", T0);
	ck_assert_int_eq(store_put(s, a), 0);
	ck_assert_int_eq(store_flush(s), 0);

	/* a starts running; in the same batch comes a task too big to fit. */
	struct task_ev w = {.worker_id = "w1"};
	task_transition(a, TASK_EV_ASSIGN, &w, T0 + 1);
	ck_assert_int_eq(store_update(s, a), 0);
	struct task *big = mk("a", T0 + 2);
	size_t n = 1024 * 1024;
	big->payload = calloc(1, n);
	big->payload_len = n;
	ck_assert_int_eq(store_put(s, big), -ENOSPC);
	/* Whether SQLite dropped the whole batch or just the statement, the
	 * update of a is durable once a flush succeeds. */
	int r = store_flush(s);
	ck_assert_msg(r == 0 || r == -ENOSPC, "flush gave %d", r);
	if (r)
		ck_assert_int_eq(store_flush(s), 0);
	store_del(s);

	ck_assert_int_eq(store_open_sqlite(dir, &opt, &s), 0);
	struct task *g;
	ck_assert_int_eq(store_get(s, a->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_RUNNING);
	ck_assert_str_eq(g->worker_id, "w1");
	task_del(g);
	ck_assert_int_eq(store_get(s, big->id, &g), -ENOENT);

	/* Fill it up with small tasks: the error is -ENOSPC at a put or at the
	 * flush, and what was flushed before stays readable. The lost batch
	 * leaves none of its tasks, although they went in by one multi-row
	 * INSERT, which keeps the rows before a failing one until the batch is
	 * rolled back. */
	int err = 0, flushed = 0, nbatch = 0;
	char last_ok[ID_LEN + 1] = "", batch[10][ID_LEN + 1];
	for (int i = 0; i < 100000 && !err; i++) {
		struct task *t = mk("fill", T0 + 10 + i);
		task_set_bytes(&t->payload, &t->payload_len, big->payload, 2000);
		err = store_put(s, t);
		if (!err)
			memcpy(batch[nbatch++], t->id, ID_LEN + 1);
		if (!err && nbatch == 10) {
			err = store_flush(s);
			if (!err) {
				memcpy(last_ok, t->id, sizeof last_ok);
				flushed++;
				nbatch = 0;
			}
		}
		task_del(t);
	}
	ck_assert_int_eq(err, -ENOSPC);
	ck_assert_int_gt(flushed, 0);
	store_flush(s);
	ck_assert_int_eq(store_get(s, last_ok, &g), 0);
	task_del(g);
	for (int i = 0; i < nbatch; i++)
		ck_assert_int_eq(store_get(s, batch[i], &g), -ENOENT);
	store_del(s);
	task_del(a);
	task_del(big);
}
END_TEST

START_TEST(schema_is_versioned_and_newer_ones_refused)
{
	struct store *s = open_store();
	store_del(s);
	sqlite3 *db = raw();
	ck_assert_int_eq(raw_int(db, "SELECT max(version) FROM schema_version"), 3);
	ck_assert_int_eq(
	    sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(store_open_sqlite(dir, NULL, &s), E_UNSUPPORTED);
}
END_TEST

/* Gives t a payload of n bytes that differ from their neighbours. */
static void set_big_payload(struct task *t, size_t n)
{
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	task_set_bytes(&t->payload, &t->payload_len, p, n);
	free(p);
}

static long long index_count(sqlite3 *db, const char *name)
{
	char q[128];
	snprintf(q, sizeof q, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
	return raw_int(db, q);
}

/* Closes s, runs undo (SQL taking the dir back to an older schema) on it,
 * and opens it again: it must come up migrated to the current schema
 * (v3: tasks_final and payloads, no tasks_status nor tasks_finished). */
/* Undoes v3's payloads table: its payloads go back into their rows. */
#define UNDO_PAYLOADS                                                                              \
	"UPDATE tasks SET payload = (SELECT payload FROM payloads WHERE task = tasks.rowid)"       \
	" WHERE rowid IN (SELECT task FROM payloads);"                                             \
	"DROP TRIGGER tasks_payload_gone; DROP TABLE payloads;"

static struct store *downgrade_and_reopen(struct store *s, const char *undo)
{
	store_del(s);
	sqlite3 *db = raw();
	ck_assert_int_eq(sqlite3_exec(db, undo, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_store();
	db = raw();
	ck_assert_int_eq(raw_int(db, "SELECT max(version) FROM schema_version"), 3);
	ck_assert_int_eq(index_count(db, "tasks_status"), 0);
	ck_assert_int_eq(index_count(db, "tasks_finished"), 0);
	ck_assert_int_eq(index_count(db, "tasks_final"), 1);
	ck_assert_int_eq(index_count(db, "payloads"), 1);
	sqlite3_close(db);
	return s;
}

/* A data dir written by schema v1 (tasks_status and tasks_finished, no
 * tasks_final) opens with its tasks intact, migrated to v2 and on to v3,
 * and its status lists still work. */
START_TEST(v1_data_dir_is_migrated_to_v2)
{
	struct store *s = open_store();
	struct task *a = mk("a", T0), *b = mk("a", T0 + 1), *c = mk("b", T0 + 2);
	task_transition(b, TASK_EV_CANCEL, NULL, T0 + 3);
	ck_assert_int_eq(store_put(s, a), 0);
	ck_assert_int_eq(store_put(s, b), 0);
	ck_assert_int_eq(store_put(s, c), 0);
	ck_assert_int_eq(store_flush(s), 0);
	/* Take the dir back to exactly what v1 left. */
	s = downgrade_and_reopen(s, UNDO_PAYLOADS "DROP INDEX tasks_final;"
	                            "CREATE INDEX tasks_status ON tasks(status, id);"
	                            "CREATE INDEX tasks_finished ON tasks(finished_ms)"
	                            " WHERE finished_ms > 0;"
	                            "UPDATE schema_version SET version = 1");
	struct collect got = {.n = 0};
	char next[ID_LEN + 1];
	struct store_filter cancelled = {.status = TASK_CANCELLED};
	ck_assert_int_eq(store_list(s, &cancelled, collect, &got, next), 1);
	ck_assert_str_eq(got.t[0]->id, b->id);
	collect_free(&got);
	struct store_filter pending = {.status = TASK_PENDING};
	ck_assert_int_eq(store_list(s, &pending, collect, &got, next), 2);
	ck_assert_str_eq(got.t[0]->id, c->id);
	ck_assert_str_eq(got.t[1]->id, a->id);
	collect_free(&got);
	store_del(s);
	task_del(a);
	task_del(b);
	task_del(c);
}
END_TEST

/* A data dir written by schema v2 (with tasks_finished, payloads inline)
 * opens migrated to v3, without that index: its purge still removes
 * exactly the old finished tasks, and a large payload stored inline still
 * reads back, also after its task was updated. */
START_TEST(v2_data_dir_is_migrated_to_v3)
{
	struct store *s = open_store();
	struct task *t[3];
	for (int i = 0; i < 3; i++) {
		char id[ID_LEN + 1];
		id_first_at(T0 + i, id); /* made when they were created */
		t[i] = task_new(id, "a", T0 + i);
	}
	task_transition(t[0], TASK_EV_CANCEL, NULL, T0 + 10);
	task_transition(t[1], TASK_EV_CANCEL, NULL, T0 + 20);
	set_big_payload(t[2], 3000);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(store_put(s, t[i]), 0);
	ck_assert_int_eq(store_flush(s), 0);
	s = downgrade_and_reopen(s, UNDO_PAYLOADS "CREATE INDEX tasks_finished ON tasks(finished_ms)"
	                                          " WHERE finished_ms > 0;"
	                                          "UPDATE schema_version SET version = 2");
	ck_assert_int_eq(store_purge(s, T0 + 15, 0), 1);
	ck_assert_int_eq(store_flush(s), 0);
	struct task *g;
	ck_assert_int_eq(store_get(s, t[0]->id, &g), -ENOENT);
	for (int i = 1; i < 3; i++) {
		ck_assert_int_eq(store_get(s, t[i]->id, &g), 0);
		task_del(g);
	}
	struct task_ev w = {.worker_id = "w1"};
	task_transition(t[2], TASK_EV_ASSIGN, &w, T0 + 30);
	ck_assert_int_eq(store_update(s, t[2]), 0);
	ck_assert_int_eq(store_flush(s), 0);
	ck_assert_int_eq(store_get(s, t[2]->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_RUNNING);
	ck_assert_uint_eq(g->payload_len, 3000);
	ck_assert_mem_eq(g->payload, t[2]->payload, 3000);
	task_del(g);
	store_del(s);
	for (int i = 0; i < 3; i++)
		task_del(t[i]);
}
END_TEST

/* Write-behind: a task put and updated in one batch is one row with its
 * latest state, readable before the flush and after a restart. */
START_TEST(put_and_updates_in_one_batch_store_the_latest_state)
{
	struct store *s = open_store();
	struct task *a = mk("a", T0);
	ck_assert_int_eq(store_put(s, a), 0);
	struct task_ev w = {.worker_id = "w1"};
	task_transition(a, TASK_EV_ASSIGN, &w, T0 + 1);
	ck_assert_int_eq(store_update(s, a), 0);
	struct task *g;
	ck_assert_int_eq(store_get(s, a->id, &g), 0); /* spilled into the batch */
	ck_assert_int_eq(g->status, TASK_RUNNING);
	task_del(g);
	struct task_ev r = {.worker_id = "w1", .output = "ok", .output_len = 2};
	task_transition(a, TASK_EV_COMPLETE, &r, T0 + 2);
	ck_assert_int_eq(store_update(s, a), 0);
	ck_assert_int_eq(store_put(s, a), -EEXIST);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);
	s = open_store();
	ck_assert_int_eq(store_get(s, a->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_COMPLETED);
	ck_assert_int_eq(g->finished_ms, T0 + 2);
	ck_assert_mem_eq(g->output, "ok", 2);
	ck_assert_str_eq(g->worker_id, "w1");
	task_del(g);
	store_del(s);
	task_del(a);
}
END_TEST

/* More new tasks in one batch than one INSERT takes (16), some updated in
 * the batch, beside an update of an older task: each row gets its own
 * fields, and each large payload its own task, after a restart too. */
START_TEST(a_large_batch_stores_every_task_as_put)
{
	enum { N = 37 };
	struct store *s = open_store();
	struct task *old = mk("old", T0), *t[N];
	ck_assert_int_eq(store_put(s, old), 0);
	ck_assert_int_eq(store_flush(s), 0);
	struct task_ev w = {.worker_id = "w1"};
	task_transition(old, TASK_EV_ASSIGN, &w, T0 + 1);
	ck_assert_int_eq(store_update(s, old), 0);
	for (int i = 0; i < N; i++) {
		char v[32];
		t[i] = mk(i % 2 ? "odd" : "even", T0 + 10 + i);
		snprintf(v, sizeof v, "task %d", i);
		task_set_str(&t[i]->description, v);
		if (i % 5 == 0)
			set_big_payload(t[i], 1500 + i); /* out of the row */
		else
			task_set_bytes(&t[i]->payload, &t[i]->payload_len, v, strlen(v));
		t[i]->priority = i;
		t[i]->max_attempts = i + 1;
		t[i]->timeout_ms = 1000 + i;
		if (i % 3 == 0) {
			snprintf(v, sizeof v, "key-%d", i);
			task_set_str(&t[i]->idempotency_key, v);
		}
		snprintf(v, sizeof v, "%d", i);
		task_add_label(t[i], "i", v);
		ck_assert_int_eq(store_put(s, t[i]), 0);
		if (i % 4 == 0) {
			task_transition(t[i], TASK_EV_ASSIGN, &w, T0 + 100 + i);
			ck_assert_int_eq(store_update(s, t[i]), 0);
		}
	}
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);

	s = open_store();
	struct task *g;
	ck_assert_int_eq(store_get(s, old->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_RUNNING);
	task_del(g);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(store_get(s, t[i]->id, &g), 0);
		ck_assert_str_eq(g->name, t[i]->name);
		ck_assert_str_eq(g->description, t[i]->description);
		ck_assert_uint_eq(g->payload_len, t[i]->payload_len);
		ck_assert_mem_eq(g->payload, t[i]->payload, t[i]->payload_len);
		ck_assert_int_eq(g->priority, i);
		ck_assert_int_eq(g->max_attempts, i + 1);
		ck_assert_int_eq(g->timeout_ms, 1000 + i);
		ck_assert_int_eq(g->created_ms, T0 + 10 + i);
		ck_assert_str_eq(task_label(g, "i"), task_label(t[i], "i"));
		ck_assert_int_eq(g->status, t[i]->status);
		ck_assert_int_eq(g->started_ms, t[i]->started_ms);
		if (t[i]->worker_id)
			ck_assert_str_eq(g->worker_id, t[i]->worker_id);
		else
			ck_assert_ptr_null(g->worker_id);
		task_del(g);
		if (t[i]->idempotency_key) {
			ck_assert_int_eq(store_find_idempotent(s, t[i]->idempotency_key, &g), 0);
			ck_assert_str_eq(g->id, t[i]->id);
			task_del(g);
		}
	}
	store_del(s);
	task_del(old);
	for (int i = 0; i < N; i++)
		task_del(t[i]);
}
END_TEST

/* A payload too large to rewrite with every status change lives in its own
 * table and reads back the same through every read; the purge takes it
 * with its task. */
START_TEST(large_payloads_live_outside_the_task_row)
{
	struct store *s = open_store();
	struct task *big = mk("a", T0), *small = mk("a", T0 + 1);
	set_big_payload(big, 5000);
	set_big_payload(small, 100);
	ck_assert_int_eq(store_put(s, big), 0);
	ck_assert_int_eq(store_put(s, small), 0);
	struct task_ev w = {.worker_id = "w1"};
	task_transition(big, TASK_EV_ASSIGN, &w, T0 + 2);
	ck_assert_int_eq(store_update(s, big), 0);
	ck_assert_int_eq(store_flush(s), 0);
	sqlite3 *db = raw();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM payloads"), 1);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks WHERE payload IS NULL"), 1);

	struct collect c = {.n = 0};
	ck_assert_int_eq(store_load_active(s, collect, &c), 2);
	for (int i = 0; i < 2; i++) {
		struct task *want = i == 0 ? big : small;
		ck_assert_str_eq(c.t[i]->id, want->id);
		ck_assert_uint_eq(c.t[i]->payload_len, want->payload_len);
		ck_assert_mem_eq(c.t[i]->payload, want->payload, want->payload_len);
	}
	collect_free(&c);
	char next[ID_LEN + 1];
	struct store_filter running = {.status = TASK_RUNNING, .with_payload = 1};
	ck_assert_int_eq(store_list(s, &running, collect, &c, next), 1);
	ck_assert_mem_eq(c.t[0]->payload, big->payload, 5000);
	collect_free(&c);
	running.with_payload = 0;
	ck_assert_int_eq(store_list(s, &running, collect, &c, next), 1);
	ck_assert_ptr_null(c.t[0]->payload);
	collect_free(&c);

	struct task_ev r = {.worker_id = "w1", .output = "ok", .output_len = 2};
	task_transition(big, TASK_EV_COMPLETE, &r, T0 + 3);
	ck_assert_int_eq(store_update(s, big), 0);
	ck_assert_int_eq(store_flush(s), 0);
	struct task *g;
	ck_assert_int_eq(store_get(s, big->id, &g), 0);
	ck_assert_int_eq(g->status, TASK_COMPLETED);
	ck_assert_uint_eq(g->payload_len, 5000);
	ck_assert_mem_eq(g->payload, big->payload, 5000);
	task_del(g);

	/* The purge takes the payload with its task. */
	char id[ID_LEN + 1];
	id_new(id);
	ck_assert_int_eq(store_purge(s, id_time_ms(id) + 1, 0), 1);
	ck_assert_int_eq(store_flush(s), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM payloads"), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks"), 1);
	sqlite3_close(db);
	store_del(s);
	task_del(big);
	task_del(small);
}
END_TEST

/* Commits never checkpoint; store_maintain does, once the store was idle
 * for a call, and truncates the WAL. */
START_TEST(checkpoints_wait_for_an_idle_maintain)
{
	struct store *s = open_store();
	char wal[192];
	snprintf(wal, sizeof wal, "%s/orchd.db-wal", dir);
	struct stat sb;
	for (int i = 0; i < 3000; i++) {
		struct task *t = mk("a", T0 + i);
		task_set_bytes(&t->payload, &t->payload_len, "0123456789abcdef0123456789abcdef", 32);
		ck_assert_int_eq(store_put(s, t), 0);
		ck_assert_int_eq(store_flush(s), 0);
		task_del(t);
	}
	/* Past SQLite's 1,000-page auto-checkpoint, the WAL was never reset. */
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_int_gt(sb.st_size, 1000 * 4096);
	ck_assert_int_eq(store_maintain(s), 0); /* commits since the last call: busy */
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_int_gt(sb.st_size, 1000 * 4096);
	ck_assert_int_eq(store_maintain(s), 0); /* idle */
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
	sqlite3 *db = raw();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks"), 3000);
	sqlite3_close(db);
	store_del(s);
}
END_TEST

/* The WAL header's checkpoint sequence number: SQLite adds one each time a
 * writer restarts the WAL from its start. */
static uint32_t wal_restarts(const char *wal)
{
	uint8_t h[16];
	FILE *f = fopen(wal, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(h, 1, sizeof h, f), sizeof h);
	fclose(f);
	return (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
}

/* Under steady load (a commit before every maintain, so never idle) the
 * store's checkpointer thread keeps the WAL bounded: 64 MiB of payloads go
 * through a WAL with a 1 MiB limit, which SQLite restarts from its start
 * again and again. Without checkpoints the WAL never restarts and grows
 * to 290 MiB; with them it peaked at 6-9 MiB. On busy CPUs the thread
 * fell behind (the loop here writes without pause, the checkpointer waits
 * for fdatasync) and the WAL reached 240 MiB, until the loop learnt to
 * wait for it past four limits: the bound below holds however busy. */
START_TEST(checkpointer_bounds_the_wal_under_load)
{
	struct store_sqlite_options opt = {.wal_max_bytes = 1 << 20};
	struct store *s;
	ck_assert_int_eq(store_open_sqlite(dir, &opt, &s), 0);
	char wal[192];
	snprintf(wal, sizeof wal, "%s/orchd.db-wal", dir);
	off_t most = 0;
	uint32_t first = 0;
	enum { TASKS = 8192, PAYLOAD = 8 * 1024 };
	for (int i = 0; i < TASKS; i++) {
		struct task *t = mk("a", T0 + i);
		set_big_payload(t, PAYLOAD);
		ck_assert_int_eq(store_put(s, t), 0);
		ck_assert_int_eq(store_flush(s), 0);
		task_del(t);
		ck_assert_int_eq(store_maintain(s), 0);
		struct stat sb;
		ck_assert_int_eq(stat(wal, &sb), 0);
		if (sb.st_size > most)
			most = sb.st_size;
		if (i == 0)
			first = wal_restarts(wal);
	}
	/* However far the checkpointer falls behind: WAL_HARD_FACTOR (4)
	 * limits, one commit (3 pages of payload, 4 of B-trees) and frame
	 * headers. */
	ck_assert_int_lt(most, (4 * (1 << 20) / 4096 + 16) * (4096 + 24) + 32);
	ck_assert_uint_gt(wal_restarts(wal), first);
	store_del(s);
	sqlite3 *db = raw();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM tasks"), TASKS);
	sqlite3_close(db);
}
END_TEST

START_TEST(full_sync_option_opens_and_writes)
{
	struct store_sqlite_options opt = {.sync_full = 1};
	struct store *s;
	ck_assert_int_eq(store_open_sqlite(dir, &opt, &s), 0);
	struct task *t = mk("a", T0);
	ck_assert_int_eq(store_put(s, t), 0);
	ck_assert_int_eq(store_flush(s), 0);
	store_del(s);
	task_del(t);
}
END_TEST

static int stop_after_two(struct task *t, void *arg)
{
	int *n = arg;
	task_del(t);
	return ++*n == 2 ? 42 : 0;
}

START_TEST(callbacks_can_stop_a_walk)
{
	struct store *s = open_store();
	struct task *t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = mk("a", T0 + i);
		store_put(s, t[i]);
	}
	int n = 0;
	ck_assert_int_eq(store_load_active(s, stop_after_two, &n), 42);
	n = 0;
	char next[ID_LEN + 1];
	ck_assert_int_eq(store_list(s, NULL, stop_after_two, &n, next), 42);
	store_del(s); /* flushes */
	s = open_store();
	struct collect c = {.n = 0};
	ck_assert_int_eq(store_load_active(s, collect, &c), 5);
	collect_free(&c);
	store_del(s);
	for (int i = 0; i < 5; i++)
		task_del(t[i]);
}
END_TEST

/* The store turns SQLite's allocation statistics off (they cost a global
 * mutex per allocation); checked in a fresh process, where the store is
 * the first SQLite user. */
START_TEST(sqlite_memory_statistics_are_off)
{
	struct store *s = open_store();
	struct task *t = mk("a", T0);
	ck_assert_int_eq(store_put(s, t), 0);
	ck_assert_int_eq(store_flush(s), 0);
	sqlite3_int64 cur = -1, hi = -1;
	ck_assert_int_eq(sqlite3_status64(SQLITE_STATUS_MALLOC_COUNT, &cur, &hi, 0), SQLITE_OK);
	ck_assert_int_eq(cur, 0);
	store_del(s);
	task_del(t);
}
END_TEST

Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("sqlite");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, put_then_get_round_trips_every_field);
	tcase_add_test(tc, state_survives_close_and_reopen);
	tcase_add_test(tc, crash_keeps_flushed_and_drops_unflushed);
	tcase_add_test(tc, writes_are_visible_to_others_only_after_flush);
	tcase_add_test(tc, idempotency_key_finds_the_first_task);
	tcase_add_test(tc, put_of_a_taken_id_is_refused_after_flush_and_restart);
	tcase_add_test(tc, list_pages_newest_first_with_filters);
	tcase_add_test(tc, purge_removes_only_old_finished_tasks);
	tcase_add_test(tc, second_scheduler_on_the_same_dir_is_refused);
	tcase_add_test(tc, read_only_dir_is_reported);
	tcase_add_test(tc, full_disk_fails_the_batch_but_keeps_updates);
	tcase_add_test(tc, schema_is_versioned_and_newer_ones_refused);
	tcase_add_test(tc, v1_data_dir_is_migrated_to_v2);
	tcase_add_test(tc, v2_data_dir_is_migrated_to_v3);
	tcase_add_test(tc, put_and_updates_in_one_batch_store_the_latest_state);
	tcase_add_test(tc, a_large_batch_stores_every_task_as_put);
	tcase_add_test(tc, large_payloads_live_outside_the_task_row);
	tcase_add_test(tc, checkpoints_wait_for_an_idle_maintain);
	tcase_add_test(tc, checkpointer_bounds_the_wal_under_load);
	tcase_add_test(tc, full_sync_option_opens_and_writes);
	tcase_add_test(tc, callbacks_can_stop_a_walk);
	tcase_add_test(tc, sqlite_memory_statistics_are_off);
	suite_add_tcase(s, tc);
	return s;
}
