/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Response-time statistics as the MUD's and logrepo's reports give them:
 * sort the samples, then nearest-rank percentiles over the sorted array.
 */
#ifndef EH_STATS_H
#define EH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Ascending; @v may be NULL when @n is 0. */
void eh_sort_doubles(double *v, size_t n);

/* Nearest-rank percentile @q (0..1] over sorted @v; 0 for no samples. */
double eh_pct(const double *v, size_t n, double q);

/* One phase's response times, as both reports print them (ms). */
struct eh_rt_stats {
	char name[24];
	uint32_t n;
	double p50, p90, p99, max, mean;
};

/* Sort @v (@n response times in ms, may be NULL when 0) and sum them up. */
void eh_rt_stats_of(struct eh_rt_stats *s, const char *name, double *v, size_t n);

/*
 * The forms, from one table of columns: a text table (its header line, then
 * one line per phase) and one JSON object per phase.
 */
void eh_rt_stats_text_head(FILE *f);
void eh_rt_stats_text(FILE *f, const struct eh_rt_stats *s);
void eh_rt_stats_json(FILE *f, const struct eh_rt_stats *s);

#endif /* EH_STATS_H */
