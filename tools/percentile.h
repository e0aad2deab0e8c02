/* Percentiles of a sample, for pciefw-trace --stats. */
#ifndef PCIEFW_PERCENTILE_H
#define PCIEFW_PERCENTILE_H

#include <stddef.h>

/* Sort @v ascending (NaNs, which never compare, go last). */
void pf_sort_doubles(double *v, size_t n);
/*
 * The @p-th percentile (0 < @p <= 100) of @n > 0 sorted values, by the
 * nearest-rank method: the smallest value with at least @p percent of the
 * sample at or below it.  Monotonic in @p: p50 <= p90 <= p99 <= max.
 */
double pf_percentile(const double *sorted, size_t n, double p);

#endif /* PCIEFW_PERCENTILE_H */
