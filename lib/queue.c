/* queue: per-name priority heaps and a backoff heap (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

struct name_slot {
	char *name; /* NULL = empty slot */
	uint32_t hash;
	struct heap h;
};

struct queue {
	struct name_slot *slots; /* open addressing, linear probing */
	size_t nslots;           /* a power of two */
	size_t nnames;
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
 * Name table
 * ------------------------------------------------------------------------ */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct name_slot *lookup(const struct queue *q, const char *name, uint32_t h)
{
	size_t mask = q->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct name_slot *s = &q->slots[i];
		if (!s->name || (s->hash == h && strcmp(s->name, name) == 0))
			return s;
	}
}

static void grow(struct queue *q)
{
	struct name_slot *old = q->slots;
	size_t n = q->nslots;
	q->nslots = n * 2;
	q->slots = xcalloc(q->nslots, sizeof *q->slots);
	for (size_t i = 0; i < n; i++)
		if (old[i].name)
			*lookup(q, old[i].name, old[i].hash) = old[i];
	free(old);
}

/* Returns the heap for name, creating it when create is set (else NULL if
 * the name was never seen). Names are never removed: there are few of them
 * and an empty heap holds no array. */
static struct heap *heap_for(struct queue *q, const char *name, int create)
{
	uint32_t h = hash_str(name);
	struct name_slot *s = lookup(q, name, h);
	if (s->name)
		return &s->h;
	if (!create)
		return NULL;
	if ((q->nnames + 1) * 2 > q->nslots) {
		grow(q);
		s = lookup(q, name, h);
	}
	s->name = xstrdup(name);
	s->hash = h;
	q->nnames++;
	return &s->h;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

struct queue *queue_new(void)
{
	struct queue *q = xcalloc(1, sizeof *q);
	q->nslots = 16;
	q->slots = xcalloc(q->nslots, sizeof *q->slots);
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

void queue_del(struct queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nslots; i++) {
		if (q->slots[i].name) {
			heap_drop(&q->slots[i].h);
			free(q->slots[i].name);
		}
	}
	heap_drop(&q->held);
	free(q->slots);
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
	struct name_slot *s = lookup(q, name, hash_str(name));
	return s->name ? s->h.n : 0;
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
	for (size_t i = 0; i < q->nslots; i++) {
		const struct name_slot *s = &q->slots[i];
		if (s->name && s->h.n) {
			int r = cb(s->name, s->h.n, arg);
			if (r)
				return r;
		}
	}
	return 0;
}
