/*
 * The endpoint's limits against a hostile host (docs/protocol.md 1.3): DMA
 * completions matched per chunk, outstanding DMA reads capped, cancelled
 * reads remembered per reset however many there were, DMA ranges that wrap
 * past 2^64 refused, and output queued only up to a cap.  Most hosts here
 * are raw (tests/lib/raw_host.h): they misbehave on purpose.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"
#include "raw_host.h"
#include "transport.h"

enum {
	R_ID = 0x00, R_SCRATCH = 0x04, R_DMA_SRC = 0x10, R_DMA_DST = 0x18,
	R_DMA_LEN = 0x20, R_DMA_CMD = 0x24, R_DMA_STATUS = 0x28, R_SIDE = 0x48,
};
#define CMD_COPY    0x01u
#define CMD_FILL    0x11u
#define ST_DONE     2u
#define ST_ERROR    4u
#define BAR_RAM     2

/* Mirrors PF_DMA_MAX_READS in endpoint/device.h (spec 1.3). */
#define MAX_DMA_READS 8192

static const char *const testdev_args[] = { "--device", "testdev", NULL };

struct fixture {
	struct endpoint_proc ep;
	struct raw_host r;
	struct pf_buf b;
};

static void setup(struct fixture *f, gconstpointer data)
{
	endpoint_start(&f->ep, false, testdev_args);
	pf_buf_init(&f->b);
	f->r.fd = -1;
}

/* The endpoint lived through it, its log is clean, and it serves again. */
static void teardown(struct fixture *f, gconstpointer data)
{
	struct pf_host *h;
	char *log;

	if (f->r.fd >= 0)
		raw_host_close(&f->r);
	pf_buf_free(&f->b);
	g_assert_true(endpoint_alive(&f->ep));
	h = connect_host(&f->ep);
	g_assert_cmphex(rd32(h, 0, R_ID), ==, 0x7e57de01);
	pf_host_close(h, true);
	log = endpoint_log(&f->ep);
	if (strstr(log, "AddressSanitizer") || strstr(log, "runtime error"))
		g_error("endpoint reported memory errors:\n%s", log);
	g_free(log);
	g_assert_cmpint(endpoint_stop(&f->ep), ==, 0);
}

static void put_w64(struct pf_buf *b, uint64_t off, uint64_t v)
{
	uint8_t d[8];

	pf_le_store(d, 8, v);
	g_assert_cmpint(pf_put_mem_write(b, 0, off, d, 8), ==, 0);
}

static void put_w32(struct pf_buf *b, uint64_t off, uint32_t v)
{
	uint8_t d[4];

	pf_le_store(d, 4, v);
	g_assert_cmpint(pf_put_mem_write(b, 0, off, d, 4), ==, 0);
}

/* The next message must not be an Error; returns it. */
static PfMessage *next_ok(struct raw_host *r)
{
	PfMessage *m = raw_host_next(r, 10000);

	g_assert_nonnull(m);
	if (m->body_case == PCIEFW__MESSAGE__BODY_ERROR)
		g_error("endpoint sent Error: %s", m->error->text);
	return m;
}

/*
 * Item 3 of issue 11: a split DMA read whose first chunk is completed
 * twice.  Counting completions made it "done" with chunk 2 never written,
 * and testdev copied uninitialised heap to the guest.  Each chunk
 * completes once: the second is a protocol error (spec 3.4).
 */
static void test_duplicate_chunk(struct fixture *f, gconstpointer data)
{
	uint32_t tags[2];
	uint8_t chunk[64];
	PfMessage *m;

	raw_host_open(&f->r, f->ep.addr, 64);
	put_w64(&f->b, R_DMA_SRC, 0x1000);
	put_w64(&f->b, R_DMA_DST, 0x2000);
	put_w32(&f->b, R_DMA_LEN, 128);
	put_w32(&f->b, R_DMA_CMD, CMD_COPY);
	raw_host_send(&f->r, &f->b);
	for (int i = 0; i < 2; i++) {
		m = raw_host_expect(&f->r, PCIEFW__MESSAGE__BODY_DMA_READ, 10000);
		g_assert_nonnull(m);
		g_assert_cmpuint(m->dma_read->size, ==, 64);
		tags[i] = m->dma_read->tag;
	}
	g_assert_cmpuint(tags[1], ==, tags[0] + 1);
	memset(chunk, 0xaa, sizeof(chunk));
	pf_put_completion(&f->b, tags[0], PCIEFW__STATUS__STATUS_SUCCESSFUL, chunk, 64);
	pf_put_completion(&f->b, tags[0], PCIEFW__STATUS__STATUS_SUCCESSFUL, chunk, 64);
	raw_host_send(&f->r, &f->b);
	m = raw_host_next(&f->r, 10000);
	g_assert_nonnull(m);
	if (m->body_case != PCIEFW__MESSAGE__BODY_ERROR)
		g_error("expected Error, got %s", pf_msg_kind_name(m->body_case));
	g_assert_nonnull(strstr(m->error->text, "duplicate completion"));
	g_assert_null(raw_host_next(&f->r, 10000));      /* and it hung up */
}

/* Send @n MemReads of SIDE_EFFECTS: each makes testdev issue a DMA read. */
static void side_effect_reads(struct fixture *f, uint32_t first_tag, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pf_put_mem_read(&f->b, first_tag + i, 0, R_SIDE, 8);
	raw_host_send(&f->r, &f->b);
}

/*
 * Item 6: a reset with more than 64 DMA reads in flight.  Only 64
 * cancelled ranges were remembered: the late completion of the 65th-oldest
 * read was an "unknown tag" and a conforming host was dropped.
 */
static void test_reset_with_many_reads(struct fixture *f, gconstpointer data)
{
	enum { N = 200 };
	uint32_t tags[N];
	unsigned got = 0, done = 0;
	uint8_t zero[8] = { 0 };
	PfMessage *m;

	raw_host_open(&f->r, f->ep.addr, PCIEFW_DEFAULT_PAYLOAD);
	side_effect_reads(f, 1, N);
	while (got < N || done < N) {
		m = next_ok(&f->r);
		if (m->body_case == PCIEFW__MESSAGE__BODY_DMA_READ)
			tags[got++] = m->dma_read->tag;
		else if (m->body_case == PCIEFW__MESSAGE__BODY_COMPLETION)
			done++;
	}
	pf_put_reset(&f->b, 5000, PCIEFW__RESET_KIND__RESET_FUNCTION);
	raw_host_send(&f->r, &f->b);
	while ((m = next_ok(&f->r))->body_case != PCIEFW__MESSAGE__BODY_COMPLETION)
		;
	g_assert_cmpuint(m->completion->tag, ==, 5000);
	/* Now every cancelled read completes, late, as a conforming host may. */
	for (unsigned i = 0; i < N; i++)
		pf_put_completion(&f->b, tags[i], PCIEFW__STATUS__STATUS_SUCCESSFUL,
				  zero, 8);
	pf_put_mem_read(&f->b, 6000, 0, R_ID, 4);
	raw_host_send(&f->r, &f->b);
	m = next_ok(&f->r);
	g_assert_cmpint(m->body_case, ==, PCIEFW__MESSAGE__BODY_COMPLETION);
	g_assert_cmpuint(m->completion->tag, ==, 6000);
	g_assert_cmphex(pf_le_load(m->completion->data.data, 4), ==, 0x7e57de01);
}

/*
 * Item 5: DMA reads nobody answers pile up without limit.  Beyond
 * PF_DMA_MAX_READS outstanding the model's pf_dma_read() fails and no
 * DmaRead is sent; the host's own requests are still served.
 */
static void test_outstanding_read_cap(struct fixture *f, gconstpointer data)
{
	enum { N = MAX_DMA_READS + 1000 };
	unsigned reads = 0, done = 0;
	PfMessage *m;

	raw_host_open(&f->r, f->ep.addr, PCIEFW_DEFAULT_PAYLOAD);
	for (unsigned i = 0; i < N; i += 1000)
		side_effect_reads(f, 1 + i, N - i < 1000 ? N - i : 1000);
	while (done < N) {
		m = next_ok(&f->r);
		if (m->body_case == PCIEFW__MESSAGE__BODY_DMA_READ)
			reads++;
		else if (m->body_case == PCIEFW__MESSAGE__BODY_COMPLETION)
			done++;
	}
	g_assert_cmpuint(reads, ==, MAX_DMA_READS);
	pf_put_mem_read(&f->b, 100000, 0, R_ID, 4);
	raw_host_send(&f->r, &f->b);
	m = next_ok(&f->r);
	g_assert_cmpuint(m->completion->tag, ==, 100000);
}

/*
 * Item 7: testdev's DMA_SRC/DMA_DST make DMA that wraps past 2^64.  The
 * framework refuses it (the model's call fails, testdev reports ERROR),
 * nothing goes on the wire, and the connection lives.
 */
static void test_dma_wrapping_2_64(struct fixture *f, gconstpointer data)
{
	struct pf_host *h;

	setup(f, NULL);           /* no raw host: the library checks the wire */
	h = connect_host(&f->ep);
	wr64(h, 0, R_DMA_SRC, 0xfffffffffffffff8ull);
	wr64(h, 0, R_DMA_DST, GUEST_BASE);
	wr32(h, 0, R_DMA_LEN, 16);
	wr32(h, 0, R_DMA_CMD, CMD_COPY);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, ST_ERROR);
	wr32(h, 0, R_DMA_STATUS, ST_ERROR);
	wr64(h, 0, R_DMA_DST, 0xfffffffffffffff8ull);
	wr32(h, 0, R_DMA_CMD, CMD_FILL);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, ST_ERROR);
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, ==, 0);
	g_assert_cmpuint(pf_host_stats(h)->dma_writes, ==, 0);
	/* The same DMA inside guest memory still works. */
	wr32(h, 0, R_DMA_STATUS, ST_ERROR);
	wr64(h, 0, R_DMA_SRC, GUEST_BASE);
	wr64(h, 0, R_DMA_DST, GUEST_BASE + 64);
	wr32(h, 0, R_DMA_CMD, CMD_COPY);
	for (int i = 0; i < 100 && rd32(h, 0, R_DMA_STATUS) & 1; i++)
		pf_host_poll(h, 10);     /* the read is served while we wait */
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, ST_DONE);
	pf_host_close(h, true);
	char *log = endpoint_log(&f->ep);
	g_assert_nonnull(strstr(log, "wraps past 2^64"));
	g_free(log);
}

/* The endpoint's peak resident memory so far, in KiB (VmHWM). */
static long peak_kib(pid_t pid)
{
	char path[64], *text = NULL, *p;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	p = strstr(text, "VmHWM:");
	g_assert_nonnull(p);
	kib = strtol(p + 6, NULL, 10);
	g_free(text);
	return kib;
}

/* CPU time the process used so far, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], *text = NULL, *p;
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	p = strrchr(text, ')');
	g_assert_nonnull(p);
	g_assert_cmpint(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			       &ut, &st), ==, 2);
	g_free(text);
	return (long)(ut + st);
}

/*
 * Wait until the endpoint stops working on what it was sent: its CPU time
 * stands still across several looks (it sleeps in its loop, with input
 * left unread or nothing left to do).
 */
static void wait_idle(pid_t pid)
{
	long last = -1;

	for (int still = 0, i = 0; still < 5 && i < 600; i++) {
		long now = cpu_ticks(pid);

		still = now == last ? still + 1 : 0;
		last = now;
		g_usleep(100 * 1000);
	}
}

/* Headroom over the queue cap for the endpoint's own memory (and ASan's). */
#define RSS_BOUND_KIB (160L * 1024)

/*
 * Item 4: a host that sends requests and never reads.  8,000 64 KiB burst
 * reads took the endpoint from 4 to 503 MiB; now it stops reading above the
 * cap, and everything is still answered once the host reads.
 */
static void test_host_never_reads(struct fixture *f, gconstpointer data)
{
	enum { N = 8000, SIZE = 64 * 1024 };
	long base;
	size_t sent = 0;
	unsigned done = 0;
	PfMessage *m;

	raw_host_open(&f->r, f->ep.addr, PCIEFW_DEFAULT_PAYLOAD);
	base = peak_kib(f->ep.pid);
	for (unsigned i = 0; i < N; i++)
		pf_put_mem_read(&f->b, i + 1, BAR_RAM, 0, SIZE);
	/* Write what the endpoint takes; it must stop taking. */
	g_assert_cmpint(pf_set_nonblock(f->r.fd, 1), ==, 0);
	for (;;) {
		ssize_t n = send(f->r.fd, f->b.data + sent, f->b.len - sent,
				 MSG_NOSIGNAL);
		struct pollfd p = { .fd = f->r.fd, .events = POLLOUT };

		if (n > 0)
			sent += (size_t)n;
		else
			g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		if (sent == f->b.len || poll(&p, 1, 2000) == 0)
			break;
	}
	wait_idle(f->ep.pid);
	g_test_message("sent %zu of %zu bytes; peak %ld KiB (base %ld)", sent,
		       f->b.len, peak_kib(f->ep.pid), base);
	g_assert_cmpint(peak_kib(f->ep.pid) - base, <, RSS_BOUND_KIB);
	/* Now read: every request gets its answer, memory stays bounded. */
	g_assert_cmpint(pf_set_nonblock(f->r.fd, 0), ==, 0);
	while (done < N) {
		if (sent < f->b.len) {
			ssize_t n = send(f->r.fd, f->b.data + sent, f->b.len - sent,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				sent += (size_t)n;
		}
		m = next_ok(&f->r);
		g_assert_cmpint(m->body_case, ==, PCIEFW__MESSAGE__BODY_COMPLETION);
		g_assert_cmpuint(m->completion->tag, ==, done + 1);
		g_assert_cmpuint(m->completion->data.len, ==, SIZE);
		done++;
	}
	pf_buf_clear(&f->b);
	g_assert_cmpint(peak_kib(f->ep.pid) - base, <, RSS_BOUND_KIB);
}

/*
 * Item 4, the guest's way: testdev FILL writes of 16 MiB each, posted one
 * after another.  They were all queued at once (150 of them: 4.1 GiB).
 */
static void test_fill_storm(struct fixture *f, gconstpointer data)
{
	enum { N = 24 };
	/* Hundreds of MiB go through: give the last completion time. */
	struct pf_host_opts o = { .name = "pciefw-test", .mem_base = GUEST_BASE,
				  .mem_size = GUEST_SIZE, .timeout_ms = 120000 };
	char err[512];
	struct pf_host *h = pf_host_connect(f->ep.addr, &o, err, sizeof(err));
	long base = peak_kib(f->ep.pid);

	if (!h)
		g_error("connect: %s", err);

	wr64(h, 0, R_DMA_DST, GUEST_BASE);
	wr32(h, 0, R_DMA_LEN, 16u << 20);
	for (int i = 0; i < N; i++)
		wr32(h, 0, R_DMA_CMD, CMD_FILL);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, ST_DONE);
	g_test_message("peak %ld KiB (base %ld), %llu bytes written", peak_kib(f->ep.pid),
		       base, (unsigned long long)pf_host_stats(h)->dma_write_bytes);
	/* Every fill arrived: the half inside guest RAM lands, the rest is refused. */
	g_assert_cmpuint(pf_host_stats(h)->dma_write_bytes, ==, (uint64_t)N * GUEST_SIZE);
	g_assert_cmpuint(pf_host_stats(h)->dma_refused, ==,
			 (uint64_t)N * (((16u << 20) - GUEST_SIZE) / PCIEFW_DEFAULT_PAYLOAD));
	g_assert_cmpint(peak_kib(f->ep.pid) - base, <, RSS_BOUND_KIB);
	pf_host_close(h, true);
}

/*
 * Run the endpoint with @argv; it must refuse to start (exit non-zero
 * within 10 s).  One that starts anyway is stopped by its PID.  Returns
 * its stderr (g_free it).
 */
static char *expect_refusal(const char *const *argv)
{
	GError *err = NULL;
	GPid pid;
	gint errfd, status = 0;
	GString *text = g_string_new(NULL);
	char buf[512];
	ssize_t n;
	bool exited = false;

	g_assert_true(g_spawn_async_with_pipes(NULL, (gchar **)argv, NULL,
					       G_SPAWN_DO_NOT_REAP_CHILD |
					       G_SPAWN_STDOUT_TO_DEV_NULL,
					       NULL, NULL, &pid, NULL, NULL, &errfd, &err));
	for (int i = 0; i < 1000 && !exited; i++) {
		exited = waitpid(pid, &status, WNOHANG) == pid;
		if (!exited)
			g_usleep(10 * 1000);
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	while ((n = read(errfd, buf, sizeof(buf))) > 0)
		g_string_append_len(text, buf, n);
	close(errfd);
	g_spawn_close_pid(pid);
	if (!exited)
		g_error("the endpoint started: %s", text->str);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	return g_string_free(text, FALSE);
}

/*
 * Issue 11 item 11: --trace-limit's G suffix overflowed, so
 * 17179869185G (2^64 + 1 GiB) was taken as 1 GiB.  The shared size parser
 * (protocol/size.h) refuses it, and the endpoint does not start.
 */
static void test_trace_limit_overflow(void)
{
	static const char *const cases[] = { "17179869185G", "18014398509481985M",
					     "0x10000000000000000", "4096T", "4096KB" };
	char *dir = g_dir_make_tmp("pciefw-tl-XXXXXX", NULL);
	char *trace = g_strdup_printf("%s/t.pcapng", dir);

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *argv[] = { g_getenv("PCIEFW_ENDPOINT"), "--device", "testdev",
				       "--listen", "tcp:127.0.0.1:0", "--trace", trace,
				       "--trace-limit", cases[i], NULL };
		char *errout = expect_refusal(argv);

		if (!strstr(errout, "invalid --trace-limit"))
			g_error("'%s': expected a refusal, got: %s", cases[i], errout);
		g_free(errout);
	}
	g_unlink(trace);
	g_rmdir(dir);
	g_free(trace);
	g_free(dir);
}

/* Other local users cannot connect to an endpoint's UNIX socket. */
static void test_unix_socket_owner_only(void)
{
	struct endpoint_proc ep;
	struct stat st;

	struct pf_host *h;

	endpoint_start(&ep, false, testdev_args);
	g_assert_cmpint(stat(ep.addr + strlen("unix:"), &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpuint(st.st_mode & 0777, ==, 0600);
	h = connect_host(&ep);        /* we, its owner, can; and it is serving */
	g_assert_cmphex(rd32(h, 0, R_ID), ==, 0x7e57de01);
	pf_host_close(h, true);
	g_assert_cmpint(endpoint_stop(&ep), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, setup, fn, teardown)
	ADD("/limits/duplicate-chunk", test_duplicate_chunk);
	ADD("/limits/reset-with-many-reads", test_reset_with_many_reads);
	ADD("/limits/outstanding-read-cap", test_outstanding_read_cap);
	ADD("/limits/host-never-reads", test_host_never_reads);
	ADD("/limits/fill-storm", test_fill_storm);
	g_test_add_func("/limits/trace-limit-overflow", test_trace_limit_overflow);
	g_test_add_func("/limits/unix-socket-owner-only", test_unix_socket_owner_only);
	g_test_add("/limits/dma-wrapping-2-64", struct fixture, NULL, NULL,
		   test_dma_wrapping_2_64, teardown);
	return g_test_run();
}
