// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "eh_stats.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void eh_sort_doubles(double *v, size_t n)
{
	if (n > 1)	/* qsort() of an empty (possibly NULL) array is undefined */
		qsort(v, n, sizeof(*v), cmp_double);
}

double eh_pct(const double *v, size_t n, double q)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (size_t)ceil(q * n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

void eh_rt_stats_of(struct eh_rt_stats *s, const char *name, double *v, size_t n)
{
	double sum = 0;

	eh_sort_doubles(v, n);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->n = (uint32_t)n;
	s->p50 = eh_pct(v, n, 0.5);
	s->p90 = eh_pct(v, n, 0.9);
	s->p99 = eh_pct(v, n, 0.99);
	s->max = n ? v[n - 1] : 0;
	s->mean = n ? sum / n : 0;
}

/* The columns after the phase's name and its number of requests. */
static const struct {
	const char *head;	/* text table */
	const char *key;	/* JSON */
	size_t off;
} rt_cols[] = {
	{ "p50 ms", "p50_ms", offsetof(struct eh_rt_stats, p50) },
	{ "p90 ms", "p90_ms", offsetof(struct eh_rt_stats, p90) },
	{ "p99 ms", "p99_ms", offsetof(struct eh_rt_stats, p99) },
	{ "max ms", "max_ms", offsetof(struct eh_rt_stats, max) },
	{ "mean ms", "mean_ms", offsetof(struct eh_rt_stats, mean) },
};

#define RT_NCOLS (sizeof(rt_cols) / sizeof(rt_cols[0]))

static double rt_col(const struct eh_rt_stats *s, size_t i)
{
	return *(const double *)((const char *)s + rt_cols[i].off);
}

void eh_rt_stats_text_head(FILE *f)
{
	fprintf(f, "  %-10s %8s", "phase", "requests");
	for (size_t i = 0; i < RT_NCOLS; i++)
		fprintf(f, " %10s", rt_cols[i].head);
	fprintf(f, "\n");
}

void eh_rt_stats_text(FILE *f, const struct eh_rt_stats *s)
{
	fprintf(f, "  %-10s %8u", s->name, s->n);
	for (size_t i = 0; i < RT_NCOLS; i++)
		fprintf(f, " %10.3f", rt_col(s, i));
	fprintf(f, "\n");
}

void eh_rt_stats_json(FILE *f, const struct eh_rt_stats *s)
{
	fprintf(f, "{\"name\":\"%s\",\"requests\":%u", s->name, s->n);
	for (size_t i = 0; i < RT_NCOLS; i++)
		fprintf(f, ",\"%s\":%.3f", rt_cols[i].key, rt_col(s, i));
	fprintf(f, "}");
}
