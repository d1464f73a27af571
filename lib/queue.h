/*
 * queue: the pending tasks, one priority queue per task name plus one
 * holding area for tasks waiting out a retry backoff. Within a name, higher
 * priority comes first and equal priorities come in FIFO order (by
 * task.seq, which the queue assigns on a task's first push and keeps across
 * retries, so a retried task does not lose its place to newer ones).
 * Push, pop and removal of any queued task (cancel) are O(log n): the
 * queues are binary heaps and each task records its heap position in
 * task.qidx/qwhere. Names map to their heaps through lib/map, so "the
 * next task for any of these names" costs O(k log n) for k names.
 *
 * The queue borrows tasks: it never frees them and does not look at their
 * status. A task is in at most one queue at a time and must be removed
 * before it is freed. Memory is 24 bytes per queued task plus one small
 * entry per name ever seen.
 */
#ifndef ORCHD_QUEUE_H
#define ORCHD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct task;
struct queue;

/* Called for each name with ready tasks; return non-zero to stop. */
typedef int (*queue_name_cb)(const char *name, size_t ready, void *arg);

/* Returns a new, empty queue set. Free with queue_del(). */
struct queue *queue_new(void);
/* Frees q; the tasks still in it are left alone (their qwhere is reset so
 * they can be freed or queued elsewhere). NULL is a no-op. */
void queue_del(struct queue *q);

/* Queues t (borrowed) under t->name: ready at once if t->not_before_ms <=
 * now_ms, otherwise held until then. Returns 0, or -EEXIST if t is already
 * queued. */
int queue_push(struct queue *q, struct task *t, int64_t now_ms);
/* Takes t out of the queue wherever it is (e.g. on cancel). Returns 0, or
 * -ENOENT if t is not queued. */
int queue_remove(struct queue *q, struct task *t);

/* Returns the task that should run next among those named names[0..n-1]
 * (highest priority first, then oldest), after releasing held tasks due by
 * now_ms, and takes it out of the queue; NULL if none is ready. The names
 * are borrowed for the call. */
struct task *queue_pop(struct queue *q, const char *const *names, size_t n, int64_t now_ms);
/* As queue_pop but leaves the task queued. */
struct task *queue_peek(struct queue *q, const char *const *names, size_t n, int64_t now_ms);

/* Makes held tasks whose backoff ends by now_ms ready. Returns how many. */
size_t queue_release(struct queue *q, int64_t now_ms);
/* Returns the earliest time a held task becomes ready, or INT64_MAX if none
 * is held: the scheduler's next timer. */
int64_t queue_next_release_ms(const struct queue *q);

/* Returns the number of ready tasks named name. */
size_t queue_ready(const struct queue *q, const char *name);
/* Returns the number of held (backoff) tasks. */
size_t queue_held(const struct queue *q);
/* Returns every task queued, ready or held. */
size_t queue_size(const struct queue *q);
/* Calls cb for each name that has ready tasks, in no particular order.
 * Returns the non-zero value that stopped the walk, else 0. The queue must
 * not be changed from cb. */
int queue_foreach_ready(const struct queue *q, queue_name_cb cb, void *arg);

#endif
