/* Real endpoint processes for tests; see endpoint_proc.h. */
#include "endpoint_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *endpoint_binary(void)
{
	const char *p = getenv("PCIEFW_ENDPOINT");

	if (!p)
		g_error("PCIEFW_ENDPOINT is not set (run the tests with meson test)");
	return p;
}

void endpoint_start(struct endpoint_proc *ep, bool tcp, const char *const *extra)
{
	char listen[200];
	const char *argv[32];
	int n = 0, out[2];
	char *tmp;

	memset(ep, 0, sizeof(*ep));
	tmp = g_dir_make_tmp("pciefw-test-XXXXXX", NULL);
	g_assert_nonnull(tmp);
	g_strlcpy(ep->dir, tmp, sizeof(ep->dir));
	g_free(tmp);
	snprintf(ep->log, sizeof(ep->log), "%s/endpoint.log", ep->dir);
	if (tcp)
		snprintf(listen, sizeof(listen), "tcp:127.0.0.1:0");
	else
		snprintf(listen, sizeof(listen), "unix:%s/ep.sock", ep->dir);

	argv[n++] = endpoint_binary();
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	g_assert_cmpint(pipe2(out, O_CLOEXEC), ==, 0);
	ep->pid = fork();
	g_assert_cmpint(ep->pid, >=, 0);
	if (ep->pid == 0) {
		int log = open(ep->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/* A test that aborts on a failed assertion takes its endpoint along. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);

		dup2(out[1], 1);
		dup2(log, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);

	/* The endpoint prints "listening on ADDR" once it accepts connections. */
	FILE *f = fdopen(out[0], "r");
	char line[300];

	if (!fgets(line, sizeof(line), f)) {
		char *log = endpoint_log(ep);

		endpoint_stop(ep);
		g_error("endpoint did not start:\n%s", log);
	}
	fclose(f);   /* later stdout lines would go to a closed pipe: none come */
	g_strchomp(line);
	g_assert_true(g_str_has_prefix(line, "listening on "));
	g_strlcpy(ep->addr, line + strlen("listening on "), sizeof(ep->addr));
}

bool endpoint_alive(struct endpoint_proc *ep)
{
	int st;

	return ep->pid > 0 && waitpid(ep->pid, &st, WNOHANG) == 0;
}

int endpoint_stop(struct endpoint_proc *ep)
{
	int st = 0, ret = -1;

	if (ep->pid > 0) {
		kill(ep->pid, SIGTERM);
		for (int i = 0; i < 500; i++) {
			pid_t r = waitpid(ep->pid, &st, WNOHANG);

			if (r == ep->pid) {
				ret = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
				break;
			}
			if (r < 0)
				break;
			g_usleep(10000);
		}
		if (ret == -1 && kill(ep->pid, 0) == 0) {
			kill(ep->pid, SIGKILL);
			waitpid(ep->pid, &st, 0);
		}
		ep->pid = 0;
	}
	if (ep->dir[0]) {
		GDir *d = g_dir_open(ep->dir, 0, NULL);
		const char *name;

		while (d && (name = g_dir_read_name(d))) {
			char *p = g_build_filename(ep->dir, name, NULL);

			g_unlink(p);
			g_free(p);
		}
		if (d)
			g_dir_close(d);
		g_rmdir(ep->dir);
		ep->dir[0] = '\0';
	}
	return ret;
}

char *endpoint_log(const struct endpoint_proc *ep)
{
	char *s = NULL;

	if (!g_file_get_contents(ep->log, &s, NULL, NULL))
		s = g_strdup("");
	return s;
}
