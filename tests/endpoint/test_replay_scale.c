/*
 * pciefw-replay on a crafted trace (issue 11 item 9): with --loose-irqs,
 * every interrupt vector is a stream of its own, and a trace naming tens of
 * thousands of vectors made the replay quadratic in time and memory before
 * it even connected (each new stream took room for the rest of the
 * session).  The replay must stay linear: judged by its peak memory, a
 * count that does not depend on the machine's speed.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "endpoint_proc.h"
#include "frame.h"
#include "handshake.h"
#include "msg.h"
#include "trace.h"

#define N_VECTORS 60000

/* Append the message framed in @b to the trace, then empty @b. */
static void record(struct pf_trace_writer *w, struct pf_buf *b, enum pf_dir dir,
		   uint64_t *ts)
{
	const uint8_t *p = pf_buf_peek(b);

	g_assert_cmpint(pf_trace_write(w, (*ts)++, dir, p + PF_FRAME_HEADER,
				       pf_frame_get_header(p)), ==, 0);
	pf_buf_clear(b);
}

/* A session: the handshake, then one MSI-X per vector from the endpoint. */
static void craft_trace(const char *path)
{
	struct pf_hello_params hp;
	Pciefw__DeviceDescription d;
	struct pf_trace_writer *w;
	struct pf_buf b;
	char err[256];
	uint64_t ts = 1000000000ull;

	w = pf_trace_create(path, "crafted", err, sizeof(err));
	g_assert_nonnull(w);
	pf_buf_init(&b);
	pf_hello_defaults(&hp, "host");
	pf_put_hello(&b, &hp);
	record(w, &b, PF_DIR_TO_ENDPOINT, &ts);
	pf_hello_defaults(&hp, "endpoint");
	pf_put_hello(&b, &hp);
	record(w, &b, PF_DIR_TO_HOST, &ts);
	pciefw__device_description__init(&d);
	d.vendor_id = 0x1234;
	pf_put_description(&b, &d);
	record(w, &b, PF_DIR_TO_HOST, &ts);
	for (uint32_t v = 0; v < N_VECTORS; v++) {
		pf_put_msix(&b, v);
		record(w, &b, PF_DIR_TO_HOST, &ts);
	}
	pf_buf_free(&b);
	g_assert_cmpint(pf_trace_close(w), ==, 0);
}

static void test_many_vectors(void)
{
	const char *replay = g_getenv("PCIEFW_REPLAY");
	static const char *const args[] = { "--device", "testdev", NULL };
	struct endpoint_proc ep;
	char *dir = g_dir_make_tmp("pciefw-rs-XXXXXX", NULL);
	char *trace = g_strdup_printf("%s/crafted.pcapng", dir);
	struct rusage ru;
	int status = 0;
	pid_t pid, done = 0;

	g_assert_nonnull(replay);
	craft_trace(trace);
	endpoint_start(&ep, false, args);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execl(replay, replay, "--loose-irqs", "--no-progress", "--timeout", "200",
		      trace, ep.addr, (char *)NULL);
		_exit(127);
	}
	/* Linear work is done in a second; quadratic took minutes. */
	for (int i = 0; i < 6000 && !done; i++) {
		done = wait4(pid, &status, WNOHANG, &ru);
		if (!done)
			g_usleep(10 * 1000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		wait4(pid, &status, 0, &ru);
	}
	g_test_message("replay: peak %ld KiB, exit %d", ru.ru_maxrss,
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	g_assert_true(done == pid);
	/* It ran: the endpoint sends none of those interrupts (exit 1). */
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 1);
	/* The trace holds 60,000 records of ~10 bytes; a stream per vector
	 * with room for the rest of the session would touch a page each. */
	g_assert_cmpint(ru.ru_maxrss, <, 96 * 1024);
	g_assert_cmpint(endpoint_stop(&ep), ==, 0);
	g_unlink(trace);
	g_rmdir(dir);
	g_free(trace);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/replay/loose-irqs-many-vectors", test_many_vectors);
	return g_test_run();
}
