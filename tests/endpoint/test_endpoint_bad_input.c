/*
 * Bad input to a real pciefw-endpoint: each case gets the documented
 * completion status (docs/protocol.md 3.5) or an Error message and a
 * closed connection (spec 7), and the daemon goes on to serve the next
 * host, which each test proves by reconnecting.
 */
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"
#include "transport.h"

static const char *const testdev_args[] = { "--device", "testdev", NULL };

struct fixture {
	struct endpoint_proc ep;
	struct pf_host *h;
};

static void setup(struct fixture *f, gconstpointer data)
{
	endpoint_start(&f->ep, false, testdev_args);
	f->h = connect_host(&f->ep);
}

/* The daemon is alive and a new host gets served. */
static void teardown(struct fixture *f, gconstpointer data)
{
	struct pf_host *again;

	pf_host_close(f->h, false);
	g_assert_true(endpoint_alive(&f->ep));
	again = connect_host(&f->ep);
	g_assert_cmphex(rd32(again, 0, 0), ==, 0x7e57de01);
	pf_host_close(again, true);
	g_assert_cmpint(endpoint_stop(&f->ep), ==, 0);
}

#define UR PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST

static void test_unsupported_requests(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t b[16] = { 0 };

	/* Beyond a BAR, straddling its end, in an undeclared BAR. */
	g_assert_cmpint(pf_host_mem_read(h, 0, 4096, b, 4), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 0, 4092, b, 8), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 2, UINT64_MAX - 7, b, 8), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 3, 0, b, 4), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 5, 0, b, 4), ==, UR);
	g_assert_cmpint(pf_host_io_read(h, 4, 32, b, 4), ==, UR);
	g_assert_cmpint(pf_host_io_read(h, 4, 30, b, 4), ==, UR);
	/* Illegal sizes and alignments. */
	g_assert_cmpint(pf_host_mem_read(h, 0, 0, b, 3), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 0, 2, b, 4), ==, UR);
	g_assert_cmpint(pf_host_mem_read(h, 0, 4, b, 8), ==, UR);
	g_assert_cmpint(pf_host_io_read(h, 4, 1, b, 2), ==, UR);
	g_assert_cmpint(pf_host_config_read(h, 0x42, b, 4), ==, UR);
	/* A posted write that cannot land is dropped; the BAR is unchanged. */
	g_assert_cmpint(pf_host_mem_write(h, 0, 4094, b, 4), ==, 0);
	g_assert_cmpint(pf_host_mem_write(h, 3, 0, b, 4), ==, 0);
	g_assert_cmphex(rd32(h, 0, 0), ==, 0x7e57de01);
	char *log = endpoint_log(&f->ep);
	g_assert_nonnull(strstr(log, "dropping unsupported 4-byte write to BAR3"));
	g_free(log);
}

/* Send raw bytes; the endpoint must answer with Error and hang up. */
static void expect_protocol_error(struct fixture *f, const void *p, size_t len,
				  const char *reason)
{
	int r;

	g_assert_cmpint(pf_host_send_raw(f->h, p, len), ==, 0);
	r = wait_closed(f->h, 5000);
	g_assert_cmpint(r, <, 0);
	if (reason && !strstr(pf_host_error(f->h), reason))
		g_error("expected '%s' in '%s'", reason, pf_host_error(f->h));
}

static void test_bar_index_out_of_range(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;

	pf_buf_init(&b);
	pf_put_mem_read(&b, 99, 6, 0, 4);
	expect_protocol_error(f, b.data, b.len, "BAR index 6 out of range");
	pf_buf_free(&b);
}

static void test_burst_above_max(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;
	uint32_t max = pf_host_session(f->h)->max_payload;

	pf_buf_init(&b);
	pf_put_mem_read(&b, 99, 2, 0, max + 1);
	expect_protocol_error(f, b.data, b.len, "exceeds max payload");
	pf_buf_free(&b);
}

static void test_write_above_max(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;
	uint32_t max = pf_host_session(f->h)->max_payload;
	uint8_t *big = g_malloc0(max + 1);

	pf_buf_init(&b);
	pf_put_mem_write(&b, 2, 0, big, max + 1);
	expect_protocol_error(f, b.data, b.len, "exceeds max payload");
	pf_buf_free(&b);
	g_free(big);
}

static void test_unknown_completion_tag(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;
	uint8_t d[4] = { 0 };

	pf_buf_init(&b);
	pf_put_completion(&b, 0xdeadbeef, PCIEFW__STATUS__STATUS_SUCCESSFUL, d, 4);
	expect_protocol_error(f, b.data, b.len, "unknown tag 3735928559");
	pf_buf_free(&b);
}

static void test_wrong_direction(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;

	pf_buf_init(&b);
	pf_put_msix(&b, 1);
	expect_protocol_error(f, b.data, b.len, "unexpected msix from the host");
	pf_buf_free(&b);
}

static void test_garbage_frame(struct fixture *f, gconstpointer data)
{
	static const uint8_t garbage[] = { 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	expect_protocol_error(f, garbage, sizeof(garbage), "not a pciefw Message");
}

static void test_zero_length_frame(struct fixture *f, gconstpointer data)
{
	static const uint8_t zero[] = { 0, 0, 0, 0 };

	expect_protocol_error(f, zero, sizeof(zero), "zero-length frame");
}

static void test_oversized_frame(struct fixture *f, gconstpointer data)
{
	static const uint8_t huge[] = { 0, 0, 0, 0x40 };

	expect_protocol_error(f, huge, sizeof(huge), "larger than the maximum");
}

static void test_second_hello(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;
	struct pf_hello_params hp;

	pf_buf_init(&b);
	pf_hello_defaults(&hp, "again");
	pf_put_hello(&b, &hp);
	expect_protocol_error(f, b.data, b.len, "second hello");
	pf_buf_free(&b);
}

/* Raw sockets: peers that never say hello, or vanish. */
static int raw_connect(const struct endpoint_proc *ep)
{
	struct pf_addr a;
	char err[256];
	int fd;

	g_assert_cmpint(pf_addr_parse(ep->addr, &a, err, sizeof(err)), ==, 0);
	fd = pf_connect(&a, err, sizeof(err));
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static void test_request_before_hello(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;
	char buf[4096];
	ssize_t n, total = 0;

	/* Closed and connected again at once: the endpoint is free (2.4). */
	pf_host_close(f->h, true);
	f->h = NULL;
	int fd = raw_connect(&f->ep);

	pf_buf_init(&b);
	pf_put_mem_read(&b, 1, 0, 0, 4);
	g_assert_cmpint(pf_write_all(fd, b.data, b.len), ==, 0);
	pf_buf_free(&b);
	while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
		total += n;
	close(fd);
	buf[total] = '\0';
	/* Its hello, then an Error naming the rule, then EOF. */
	g_assert_nonnull(memmem(buf, (size_t)total, "expected hello, got mem_read", 28));
	f->h = connect_host(&f->ep);
}

static void test_vanishing_clients(struct fixture *f, gconstpointer data)
{
	struct pf_buf b;

	pf_buf_init(&b);
	/* Mid-request: a read is sent, the host is gone before its completion. */
	pf_put_mem_read(&b, 1, 2, 0, 65536);
	g_assert_cmpint(pf_host_send_raw(f->h, b.data, b.len), ==, 0);
	pf_host_close(f->h, false);
	f->h = connect_host(&f->ep);
	/* Mid-frame: half a frame, then gone. */
	pf_buf_clear(&b);
	pf_put_mem_read(&b, 1, 2, 0, 8);
	g_assert_cmpint(pf_host_send_raw(f->h, b.data, b.len / 2), ==, 0);
	pf_host_close(f->h, false);
	f->h = connect_host(&f->ep);
	/* Mid-DMA: the device waits for our completion, and we leave. */
	wr32(f->h, 0, 0x10, GUEST_BASE);
	wr32(f->h, 0, 0x14, 0);
	wr32(f->h, 0, 0x20, 1u << 20);
	wr32(f->h, 0, 0x24, 1);
	pf_host_close(f->h, false);
	f->h = connect_host(&f->ep);
	g_assert_cmphex(rd32(f->h, 0, 0x28), ==, 0);     /* reset: not busy */
	pf_buf_free(&b);
	char *log = endpoint_log(&f->ep);
	g_assert_nonnull(strstr(log, "in the middle of a frame"));
	g_free(log);
}

/*
 * Only a live host makes the device busy (spec 2.4): a host that hangs up
 * with messages still unread by the endpoint (a posted write, a Goodbye)
 * and connects again at once is served, every time.
 */
static void test_close_then_connect_race(struct fixture *f, gconstpointer data)
{
	for (int i = 0; i < 2000; i++) {
		wr32(f->h, 0, 0x04, (uint32_t)i);
		pf_host_close(f->h, i & 1);
		f->h = connect_host(&f->ep);
	}
	g_assert_cmphex(rd32(f->h, 0, 0x04), ==, 0);    /* a fresh session */
	char *log = endpoint_log(&f->ep);
	g_assert_null(strstr(log, "busy"));
	g_free(log);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, setup, fn, teardown)
	ADD("/bad-input/unsupported-requests", test_unsupported_requests);
	ADD("/bad-input/bar-index-out-of-range", test_bar_index_out_of_range);
	ADD("/bad-input/read-burst-above-max", test_burst_above_max);
	ADD("/bad-input/write-burst-above-max", test_write_above_max);
	ADD("/bad-input/unknown-completion-tag", test_unknown_completion_tag);
	ADD("/bad-input/wrong-direction", test_wrong_direction);
	ADD("/bad-input/garbage-frame", test_garbage_frame);
	ADD("/bad-input/zero-length-frame", test_zero_length_frame);
	ADD("/bad-input/oversized-frame", test_oversized_frame);
	ADD("/bad-input/second-hello", test_second_hello);
	ADD("/bad-input/request-before-hello", test_request_before_hello);
	ADD("/bad-input/vanishing-clients", test_vanishing_clients);
	ADD("/bad-input/close-then-connect-race", test_close_then_connect_race);
	return g_test_run();
}
