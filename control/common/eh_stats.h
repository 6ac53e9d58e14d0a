/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Response-time statistics as the MUD's and logrepo's reports give them:
 * sort the samples, then nearest-rank percentiles over the sorted array.
 */
#ifndef EH_STATS_H
#define EH_STATS_H

#include <stddef.h>

/* Ascending; @v may be NULL when @n is 0. */
void eh_sort_doubles(double *v, size_t n);

/* Nearest-rank percentile @q (0..1] over sorted @v; 0 for no samples. */
double eh_pct(const double *v, size_t n, double q);

#endif /* EH_STATS_H */
