// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <math.h>
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
