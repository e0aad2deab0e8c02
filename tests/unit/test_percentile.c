/*
 * pciefw-trace --stats percentiles (tools/percentile.c): nearest rank,
 * never below a lower percentile, exact on known samples.
 */
#include <glib.h>

#include "percentile.h"

/* The report that found the bug: two samples gave p90 below the median. */
static void test_two_samples(void)
{
	double v[] = { 20.4, 3.0 };

	pf_sort_doubles(v, 2);
	g_assert_cmpfloat(pf_percentile(v, 2, 50), ==, 3.0);
	g_assert_cmpfloat(pf_percentile(v, 2, 90), ==, 20.4);
	g_assert_cmpfloat(pf_percentile(v, 2, 99), ==, 20.4);
}

static void test_known_values(void)
{
	double v[100], one = 7.5;

	for (int i = 0; i < 100; i++)
		v[i] = 100 - i;               /* 100 .. 1, sorted below */
	pf_sort_doubles(v, 100);
	g_assert_cmpfloat(v[0], ==, 1);
	g_assert_cmpfloat(pf_percentile(v, 100, 50), ==, 50);
	g_assert_cmpfloat(pf_percentile(v, 100, 90), ==, 90);
	g_assert_cmpfloat(pf_percentile(v, 100, 99), ==, 99);
	g_assert_cmpfloat(pf_percentile(v, 100, 100), ==, 100);
	g_assert_cmpfloat(pf_percentile(v, 10, 90), ==, 9);
	g_assert_cmpfloat(pf_percentile(&one, 1, 50), ==, 7.5);
	g_assert_cmpfloat(pf_percentile(&one, 1, 99), ==, 7.5);
}

/* For every sample size and shape: min <= p50 <= p90 <= p99 <= max. */
static void test_monotonic(void)
{
	GRand *rnd = g_rand_new_with_seed(42);

	for (size_t n = 1; n < 300; n++) {
		double *v = g_new(double, n);

		for (size_t i = 0; i < n; i++)
			v[i] = g_rand_double_range(rnd, 0, 1000);
		pf_sort_doubles(v, n);
		for (size_t i = 1; i < n; i++)
			g_assert_cmpfloat(v[i - 1], <=, v[i]);
		g_assert_cmpfloat(v[0], <=, pf_percentile(v, n, 50));
		g_assert_cmpfloat(pf_percentile(v, n, 50), <=, pf_percentile(v, n, 90));
		g_assert_cmpfloat(pf_percentile(v, n, 90), <=, pf_percentile(v, n, 99));
		g_assert_cmpfloat(pf_percentile(v, n, 99), <=, v[n - 1]);
		g_free(v);
	}
	g_rand_free(rnd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/percentile/two-samples", test_two_samples);
	g_test_add_func("/percentile/known-values", test_known_values);
	g_test_add_func("/percentile/monotonic", test_monotonic);
	return g_test_run();
}
