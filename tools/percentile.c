/* Nearest-rank percentiles; see percentile.h. */
#include "percentile.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	return (x > y) - (x < y);
}

void pf_sort_doubles(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double pf_percentile(const double *sorted, size_t n, double p)
{
	/* Rank ceil(p/100 * n), 1-based; the 1e-9 absorbs 0.9 * 10 = 9.000001. */
	double rank = ceil(p / 100.0 * (double)n - 1e-9);
	size_t i = rank < 1 ? 0 : (size_t)rank - 1;

	return sorted[i < n ? i : n - 1];
}
