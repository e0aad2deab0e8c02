/*
 * Cancelled-tag windows (endpoint/tag_window.h, issue 11 items 6 and 12):
 * one window per reset however many reads it cancelled, and correct across
 * the 32-bit wrap of DMA tags.
 */
#include <glib.h>

#include "tag_window.h"

static void test_one_window_per_reset(void)
{
	struct pf_tag_windows t;

	pf_tag_windows_clear(&t);
	/* A reset with 1000 reads of 3 chunks each in flight: one window. */
	pf_tag_windows_add(&t, 1, 3001);
	g_assert_cmpuint(t.n, ==, 1);
	g_assert_false(pf_tag_windows_has(&t, 0));
	g_assert_true(pf_tag_windows_has(&t, 1));
	g_assert_true(pf_tag_windows_has(&t, 3000));
	g_assert_false(pf_tag_windows_has(&t, 3001));
}

static void test_window_across_wrap(void)
{
	struct pf_tag_windows t;

	pf_tag_windows_clear(&t);
	pf_tag_windows_add(&t, UINT32_MAX - 9, 10);     /* 20 tags around 0 */
	g_assert_true(pf_tag_windows_has(&t, UINT32_MAX - 9));
	g_assert_true(pf_tag_windows_has(&t, UINT32_MAX));
	g_assert_true(pf_tag_windows_has(&t, 0));
	g_assert_true(pf_tag_windows_has(&t, 9));
	g_assert_false(pf_tag_windows_has(&t, 10));
	g_assert_false(pf_tag_windows_has(&t, UINT32_MAX - 10));
	g_assert_false(pf_tag_windows_has(&t, UINT32_MAX / 2));
}

/* More resets than windows: the oldest merge, nothing recent is lost. */
static void test_merge(void)
{
	struct pf_tag_windows t;

	pf_tag_windows_clear(&t);
	for (uint32_t i = 0; i < 40; i++)
		pf_tag_windows_add(&t, UINT32_MAX - 100 + i * 10, UINT32_MAX - 100 + i * 10 + 5);
	g_assert_cmpuint(t.n, ==, PF_CANCEL_WINDOWS);
	for (uint32_t i = 0; i < 40; i++)
		g_assert_true(pf_tag_windows_has(&t, UINT32_MAX - 100 + i * 10 + 4));
	/* Gaps between the newest windows stay open. */
	g_assert_false(pf_tag_windows_has(&t, UINT32_MAX - 100 + 39 * 10 + 7));
}

/* A merge never spans half the tag space: old windows are forgotten. */
static void test_no_giant_window(void)
{
	struct pf_tag_windows t;
	uint32_t step = UINT32_MAX / 8;

	pf_tag_windows_clear(&t);
	for (uint32_t i = 0; i < 40; i++)
		pf_tag_windows_add(&t, i * step, i * step + 1);
	for (unsigned i = 0; i < t.n; i++)
		g_assert_cmpuint(t.w[i].hi - t.w[i].lo, <, UINT32_MAX / 2);
	g_assert_cmpuint(t.n, ==, PF_CANCEL_WINDOWS);
	g_assert_true(pf_tag_windows_has(&t, 39 * step));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tag-window/one-per-reset", test_one_window_per_reset);
	g_test_add_func("/tag-window/across-wrap", test_window_across_wrap);
	g_test_add_func("/tag-window/merge", test_merge);
	g_test_add_func("/tag-window/no-giant-window", test_no_giant_window);
	return g_test_run();
}
