/* stats: samples and their percentiles (see stats.h). */
#include "stats.h"

#include <stdlib.h>

#include "xalloc.h"

void stats_init(struct stats *s)
{
	s->v = NULL;
	s->n = s->cap = 0;
	s->sorted = 1;
	s->sum = 0;
}

void stats_free(struct stats *s)
{
	free(s->v);
	stats_init(s);
}

void stats_add(struct stats *s, int64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = v;
	s->sum += v;
	s->sorted = 0;
}

size_t stats_count(const struct stats *s)
{
	return s->n;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void sort(struct stats *s)
{
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof *s->v, cmp);
		s->sorted = 1;
	}
}

int64_t stats_percentile(struct stats *s, double q)
{
	if (!s->n)
		return 0;
	sort(s);
	if (!(q > 0)) /* also NaN */
		return s->v[0];
	if (q >= 100)
		return s->v[s->n - 1];
	/* The rank is computed in integers of 1/1,000,000 % so that exact
	 * quantiles (q = 50 of 10 samples) do not round up through binary
	 * floating point (0.5 * 10 = 5.000000001). */
	uint64_t qm = (uint64_t)(q * 1e6 + 0.5);
	uint64_t rank = ((uint64_t)s->n * qm + 100000000 - 1) / 100000000;
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

int64_t stats_min(struct stats *s)
{
	return stats_percentile(s, 0);
}

int64_t stats_max(struct stats *s)
{
	return stats_percentile(s, 100);
}

double stats_mean(const struct stats *s)
{
	return s->n ? (double)s->sum / (double)s->n : 0;
}
