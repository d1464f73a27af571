/* queue: per-name priority heaps and a backoff heap (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "task.h"
#include "xalloc.h"

/* task.qwhere values. */
enum { IN_NONE = 0, IN_READY = 1, IN_HELD = 2 };

/* A heap slot keeps its sort key next to the pointer so sifting compares
 * without touching the tasks. Ready heaps order by (-priority, seq), the
 * held heap by (not_before_ms, seq): both are "smallest (k1, k2) first". */
struct ent {
	struct task *t;
	int64_t k1;
	uint64_t k2;
};

struct heap {
	struct ent *v;
	uint32_t n, cap;
};

/* One per task name ever seen; the name is the key in queue.names. */
struct named {
	struct heap h;
	char name[];
};

struct queue {
	struct map names; /* task name -> struct named */
	struct heap held;
	size_t total;
	uint64_t next_seq;
};

/* ------------------------------------------------------------------------
 * Binary heap
 * ------------------------------------------------------------------------ */

static int less(const struct ent *a, const struct ent *b)
{
	return a->k1 < b->k1 || (a->k1 == b->k1 && a->k2 < b->k2);
}

static void place(struct heap *h, uint32_t i, struct ent e)
{
	h->v[i] = e;
	e.t->qidx = i;
}

static void sift_up(struct heap *h, uint32_t i)
{
	struct ent e = h->v[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!less(&e, &h->v[p]))
			break;
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, e);
}

static void sift_down(struct heap *h, uint32_t i)
{
	struct ent e = h->v[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && less(&h->v[c + 1], &h->v[c]))
			c++;
		if (!less(&h->v[c], &e))
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, e);
}

static void heap_push(struct heap *h, struct ent e)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->v = xrealloc(h->v, h->cap * sizeof *h->v);
	}
	h->v[h->n++] = e;
	sift_up(h, h->n - 1);
}

/* Removes slot i; returns its task. */
static struct task *heap_take(struct heap *h, uint32_t i)
{
	struct task *t = h->v[i].t;
	h->n--;
	if (i != h->n) {
		struct ent last = h->v[h->n];
		h->v[i] = last;
		last.t->qidx = i;
		/* The moved entry may belong above or below slot i. */
		if (i > 0 && less(&last, &h->v[(i - 1) / 2]))
			sift_up(h, i);
		else
			sift_down(h, i);
	}
	/* Give memory back after a burst, but not on every pop. */
	if (h->cap > 64 && h->n < h->cap / 4) {
		h->cap /= 2;
		h->v = xrealloc(h->v, h->cap * sizeof *h->v);
	}
	t->qwhere = IN_NONE;
	t->qidx = 0;
	return t;
}

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------ */

/* Returns the heap for name, creating it when create is set (else NULL if
 * the name was never seen). Names are never removed: there are few of them
 * and an empty heap holds no array. */
static struct heap *heap_for(struct queue *q, const char *name, int create)
{
	struct named *nd = map_get(&q->names, name);
	if (nd)
		return &nd->h;
	if (!create)
		return NULL;
	size_t len = strlen(name) + 1;
	nd = xcalloc(1, sizeof *nd + len);
	memcpy(nd->name, name, len);
	map_put(&q->names, nd->name, nd);
	return &nd->h;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

struct queue *queue_new(void)
{
	struct queue *q = xcalloc(1, sizeof *q);
	map_init(&q->names);
	q->next_seq = 1;
	return q;
}

static void heap_drop(struct heap *h)
{
	for (uint32_t i = 0; i < h->n; i++) {
		h->v[i].t->qwhere = IN_NONE;
		h->v[i].t->qidx = 0;
	}
	free(h->v);
}

static void drop_named(const char *name, void *val, void *arg)
{
	struct named *nd = val;
	heap_drop(&nd->h);
	free(nd);
}

void queue_del(struct queue *q)
{
	if (!q)
		return;
	map_foreach(&q->names, drop_named, NULL);
	map_free(&q->names);
	heap_drop(&q->held);
	free(q);
}

static void make_ready(struct queue *q, struct task *t)
{
	struct ent e = {t, -(int64_t)t->priority, t->seq};
	t->qwhere = IN_READY;
	heap_push(heap_for(q, t->name, 1), e);
}

int queue_push(struct queue *q, struct task *t, int64_t now_ms)
{
	if (t->qwhere != IN_NONE)
		return -EEXIST;
	if (!t->seq)
		t->seq = q->next_seq++;
	q->total++;
	if (t->not_before_ms > now_ms) {
		struct ent e = {t, t->not_before_ms, t->seq};
		t->qwhere = IN_HELD;
		heap_push(&q->held, e);
	} else {
		make_ready(q, t);
	}
	return 0;
}

int queue_remove(struct queue *q, struct task *t)
{
	struct heap *h;
	if (t->qwhere == IN_READY)
		h = heap_for(q, t->name, 0);
	else if (t->qwhere == IN_HELD)
		h = &q->held;
	else
		return -ENOENT;
	/* A task from another queue set, or one whose qidx was clobbered,
	 * would corrupt this heap: refuse it. */
	if (!h || t->qidx >= h->n || h->v[t->qidx].t != t)
		return -ENOENT;
	heap_take(h, t->qidx);
	q->total--;
	return 0;
}

size_t queue_release(struct queue *q, int64_t now_ms)
{
	size_t n = 0;
	while (q->held.n && q->held.v[0].k1 <= now_ms) {
		make_ready(q, heap_take(&q->held, 0));
		n++;
	}
	return n;
}

int64_t queue_next_release_ms(const struct queue *q)
{
	return q->held.n ? q->held.v[0].k1 : INT64_MAX;
}

/* Returns the heap among names whose head should run next, or NULL. */
static struct heap *best(struct queue *q, const char *const *names, size_t n, int64_t now_ms)
{
	queue_release(q, now_ms);
	struct heap *b = NULL;
	for (size_t i = 0; i < n; i++) {
		struct heap *h = heap_for(q, names[i], 0);
		if (h && h->n && (!b || less(&h->v[0], &b->v[0])))
			b = h;
	}
	return b;
}

struct task *queue_pop(struct queue *q, const char *const *names, size_t n, int64_t now_ms)
{
	struct heap *h = best(q, names, n, now_ms);
	if (!h)
		return NULL;
	q->total--;
	return heap_take(h, 0);
}

struct task *queue_peek(struct queue *q, const char *const *names, size_t n, int64_t now_ms)
{
	struct heap *h = best(q, names, n, now_ms);
	return h ? h->v[0].t : NULL;
}

size_t queue_ready(const struct queue *q, const char *name)
{
	const struct named *nd = map_get(&q->names, name);
	return nd ? nd->h.n : 0;
}

size_t queue_held(const struct queue *q)
{
	return q->held.n;
}

size_t queue_size(const struct queue *q)
{
	return q->total;
}

int queue_foreach_ready(const struct queue *q, queue_name_cb cb, void *arg)
{
	size_t pos = 0;
	const struct map_ent *e;
	while ((e = map_next(&q->names, &pos))) {
		const struct named *nd = e->val;
		if (nd->h.n) {
			int r = cb(nd->name, nd->h.n, arg);
			if (r)
				return r;
		}
	}
	return 0;
}
