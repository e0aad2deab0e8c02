/*
 * The polling rule of the shared-memory rings (spec 11.4; protocol/ring.h
 * pf_poll): the window from the last 16 gaps, as the spec's formula
 * gives it, for the peers' turnarounds the rule is there to follow.
 */
#include <glib.h>

#include "ring.h"

#define US 1000ull
#define W_MIN (20 * US)
#define W_MAX (500 * US)

static void gaps(struct pf_poll *p, uint64_t gap, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pf_poll_gap(p, gap);
}

/* Nothing measured: the gaps count as 0, so the window is the least. */
static void test_starts_at_the_minimum(void)
{
	struct pf_poll p;

	pf_poll_init(&p, W_MIN, W_MAX);
	g_assert_cmpuint(pf_poll_window(&p), ==, W_MIN);
}

/*
 * A peer that answers every time after the same gap finds us polling
 * past it: 5/4 of it plus 2 us, whatever gaps came before.
 */
static void test_follows_a_steady_turnaround(void)
{
	static const uint64_t steady[] = { 50 * US, 200 * US, 10 * US, 350 * US };
	struct pf_poll p;

	pf_poll_init(&p, W_MIN, W_MAX);
	for (size_t i = 0; i < G_N_ELEMENTS(steady); i++) {
		uint64_t g = steady[i], want = g + g / 4 + PF_POLL_SLACK_NS;

		gaps(&p, g, PF_POLL_GAPS);
		if (want < W_MIN)
			want = W_MIN;
		if (want > W_MAX)
			want = W_MAX;
		g_assert_cmpuint(pf_poll_window(&p), ==, want);
		/* The window covers the gap: the peer's next bytes find us. */
		g_assert_cmpuint(pf_poll_window(&p), >, g < W_MAX ? g : W_MAX - 1);
	}
}

/*
 * Three gaps in four decide: four long ones among sixteen do not make
 * us poll long; five do.  (The halve/double rule this replaced ended up
 * at the same window either way.)
 */
static void test_three_in_four(void)
{
	struct pf_poll p;

	pf_poll_init(&p, W_MIN, W_MAX);
	gaps(&p, 40 * US, 12);
	gaps(&p, 300 * US, 4);
	g_assert_cmpuint(pf_poll_window(&p), ==, 40 * US + 10 * US + 2 * US);
	gaps(&p, 300 * US, 1);
	g_assert_cmpuint(pf_poll_window(&p), ==, 300 * US + 75 * US + 2 * US);
}

/*
 * A peer that mostly takes longer than the CPU budget of one wait costs
 * only the minimum: polling could not catch it.
 */
static void test_beyond_the_budget_polls_the_minimum(void)
{
	struct pf_poll p;

	pf_poll_init(&p, W_MIN, W_MAX);
	gaps(&p, 450 * US, PF_POLL_GAPS);
	g_assert_cmpuint(pf_poll_window(&p), ==, W_MAX);     /* 564.5 us: capped */
	gaps(&p, 2000 * US, PF_POLL_GAPS);
	g_assert_cmpuint(pf_poll_window(&p), ==, W_MIN);
	/* And it comes back as soon as the peer is near again. */
	gaps(&p, 30 * US, PF_POLL_GAPS);
	g_assert_cmpuint(pf_poll_window(&p), ==, 30 * US + 7500 + 2 * US);
}

/* Only the last 16 count, oldest overwritten first. */
static void test_forgets_old_gaps(void)
{
	struct pf_poll p;

	pf_poll_init(&p, W_MIN, W_MAX);
	gaps(&p, 400 * US, PF_POLL_GAPS);
	gaps(&p, 1 * US, PF_POLL_GAPS * 3 / 4);
	g_assert_cmpuint(pf_poll_window(&p), ==, W_MIN);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/poll-rule/starts-at-the-minimum", test_starts_at_the_minimum);
	g_test_add_func("/poll-rule/follows-a-steady-turnaround",
			test_follows_a_steady_turnaround);
	g_test_add_func("/poll-rule/three-in-four", test_three_in_four);
	g_test_add_func("/poll-rule/beyond-the-budget-polls-the-minimum",
			test_beyond_the_budget_polls_the_minimum);
	g_test_add_func("/poll-rule/forgets-old-gaps", test_forgets_old_gaps);
	return g_test_run();
}
