/*
 * pciefw-endpoint's --device MODEL[,NAME=VALUE]... and -O options
 * (endpoint/device_spec.c): nothing the user typed is dropped or skipped.
 * Each case runs the real endpoint with a --listen address it cannot
 * bind, so one that got past its options exits 1 instead of serving.
 */
#include <glib.h>
#include <string.h>

#define NO_LISTEN "unix:/nonexistent-pciefw-test-dir/ep.sock"

/* Run the endpoint with @args; its exit status, stderr in *@errout. */
static int run(const char *const *args, size_t n, gchar **errout)
{
	const gchar *argv[16] = { g_getenv("PCIEFW_ENDPOINT") };
	gint status;
	GError *e = NULL;

	g_assert_cmpuint(n, <, G_N_ELEMENTS(argv) - 3);
	for (size_t i = 0; i < n; i++)
		argv[1 + i] = args[i];
	argv[1 + n] = "--listen";
	argv[2 + n] = NO_LISTEN;
	g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, 0, NULL, NULL,
				   NULL, errout, &status, NULL));
	if (g_spawn_check_wait_status(status, &e))
		return 0;
	g_assert_true(e->domain == G_SPAWN_EXIT_ERROR);
	status = e->code;
	g_error_free(e);
	return status;
}

static void expect(const char *const *args, size_t n, int status, const char *what)
{
	gchar *errout = NULL;
	int got = run(args, n, &errout);

	if (got != status || !strstr(errout, what))
		g_error("%s ...: exit %d (want %d), expected '%s' in: %s", args[1],
			got, status, what, errout);
	g_free(errout);
}

/* The 33rd option used to be dropped silently: here an invalid mac. */
static void test_too_many_options(void)
{
	GString *dev = g_string_new("nic");
	const char *args[2] = { "--device" };

	for (int i = 0; i < 32; i++)
		g_string_append(dev, ",ifname=x");
	g_string_append(dev, ",mac=01:00:00:00:00:01");
	args[1] = dev->str;
	expect(args, 2, 2, "too many options for device nic (at most 32)");
	g_string_free(dev, TRUE);
}

/* Empty fields were skipped: ",testdev" served testdev. */
static void test_empty_fields(void)
{
	static const char *const cases[][2] = {
		{ ",testdev", "empty device model" },
		{ "", "empty device model" },
		{ "nic,,mac=52:54:00:12:34:56", "empty option in --device" },
		{ "nic,mac=52:54:00:12:34:56,", "empty option in --device" },
		{ "nosuchmodel,a=b", "unknown device model 'nosuchmodel'" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *args[] = { "--device", cases[i][0] };

		expect(args, 2, 2, cases[i][1]);
	}
}

/* -O comes after --device's options, so it overrides them. */
static void test_opt_overrides_device(void)
{
	const char *bad[] = { "--device", "testdev", "-O", "" };
	const char *ok[] = { "--device", "nic,mac=01:00:00:00:00:01",
			     "-O", "mac=52:54:00:12:34:56" };
	const char *wrong[] = { "--device", "nic,mac=52:54:00:12:34:56",
				"-O", "mac=01:00:00:00:00:01" };

	expect(bad, 4, 2, "empty option in -O");
	/* Past the options and the model: it fails only at --listen. */
	expect(ok, 4, 1, "nonexistent-pciefw-test-dir");
	expect(wrong, 4, 2, "invalid mac: 01:00:00:00:00:01 is a multicast");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/options/too-many-options", test_too_many_options);
	g_test_add_func("/options/empty-fields", test_empty_fields);
	g_test_add_func("/options/opt-overrides-device", test_opt_overrides_device);
	return g_test_run();
}
