/*
 * stats: a set of samples (latencies, in whatever unit the caller picks)
 * and their order statistics, for `orchd bench` and the benchmarks. The
 * module owns the samples; it does no I/O. Percentiles use the nearest-rank
 * method (the smallest sample with at least q % of the samples at or below
 * it), so every percentile reported is a value that was measured, and p100
 * is the maximum. Embed one and use stats_init/stats_free; out of memory
 * aborts (xalloc).
 */
#ifndef ORCHD_STATS_H
#define ORCHD_STATS_H

#include <stddef.h>
#include <stdint.h>

struct stats {
	int64_t *v; /* n samples, sorted when sorted != 0 */
	size_t n, cap;
	int sorted;
	int64_t sum;
};

void stats_init(struct stats *s);
/* Releases the samples; leaves an empty, reusable set. */
void stats_free(struct stats *s);
void stats_add(struct stats *s, int64_t v);
size_t stats_count(const struct stats *s);

/* Returns the nearest-rank q-th percentile, q in [0, 100] (clamped): the
 * sample at rank ceil(q / 100 * n), rank 1 for q = 0. Returns 0 when the
 * set is empty. Sorts the samples on first use after an add. */
int64_t stats_percentile(struct stats *s, double q);
/* Returns the smallest / largest sample, 0 when empty. */
int64_t stats_min(struct stats *s);
int64_t stats_max(struct stats *s);
/* Returns the arithmetic mean, 0 when empty. */
double stats_mean(const struct stats *s);

#endif
