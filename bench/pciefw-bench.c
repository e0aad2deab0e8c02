/*
 * pciefw-bench: protocol-level figures of a pciefw endpoint serving testdev
 * (docs/testdev.md), each set against a raw socket exchange of the same
 * message sizes on the same transport, measured in the same run.
 */
#include <errno.h>
#include <sched.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "host.h"
#include "msg.h"
#include "raw_baseline.h"

#define R_SCRATCH     0x04
#define R_DMA_SRC     0x10
#define R_DMA_DST     0x18
#define R_DMA_LEN     0x20
#define R_DMA_CMD     0x24
#define R_DMA_STATUS  0x28
#define R_DMA_IRQ     0x2c
#define DMA_CHUNK     (16u << 20)
#define GUEST_BASE    0x100000000ull

struct opts {
	unsigned reads, writes;
	unsigned dma_mib;
	unsigned think_us;       /* between timed reads */
	unsigned pipeline;       /* reads in flight at once; 1: no such rows */
	bool json;
	bool no_shm;
	bool no_rings;
	const char *endpoint_bin;
	const char *addrs[8];
	unsigned n_addrs;
};

struct result {
	const char *transport;
	const char *metric;
	const char *unit;
	double pciefw, raw;
	bool lower_is_better;
};

static struct result results[96];
static unsigned n_results;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double percentile(int64_t *v, unsigned n, double p)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	return (double)v[(unsigned)(p * (n - 1))] / 1000.0;
}

static void add(const char *tr, const char *metric, const char *unit,
		double pf, double raw, bool lower)
{
	if (n_results < sizeof(results) / sizeof(results[0]))
		results[n_results++] = (struct result){ tr, metric, unit, pf, raw, lower };
}

static size_t frame_size(int (*put)(struct pf_buf *))
{
	struct pf_buf b;
	size_t n;

	pf_buf_init(&b);
	put(&b);
	n = b.len;
	pf_buf_free(&b);
	return n;
}

static int put_read_req(struct pf_buf *b) { return pf_put_mem_read(b, 1, 0, R_SCRATCH, 4); }
static int put_read_cpl(struct pf_buf *b)
{
	uint8_t d[4] = { 0 };

	return pf_put_completion(b, 1, PCIEFW__STATUS__STATUS_SUCCESSFUL, d, 4);
}
static int put_write(struct pf_buf *b)
{
	uint8_t d[4] = { 0 };

	return pf_put_mem_write(b, 0, R_SCRATCH, d, 4);
}

/*
 * CPU time (user + system, every thread) process @pid has used, in ns,
 * from its CPU-time clock (the /proc/PID/stat sum, at ns resolution);
 * 0: this process.  -1 if it cannot be read.
 */
static int64_t cpu_ns(pid_t pid)
{
	struct timespec ts;
	clockid_t cid;

	if (clock_getcpuclockid(pid, &cid) || clock_gettime(cid, &ts))
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The process at the other end of a UNIX socket, or 0. */
static pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return 0;
	return cred.pid;
}

/* CPU of the endpoint and of this process around a timed block. */
struct cpu_span {
	pid_t peer;
	int64_t peer0, self0;
};

static void cpu_begin(struct cpu_span *c, pid_t peer)
{
	c->peer = peer;
	c->peer0 = peer ? cpu_ns(peer) : -1;
	c->self0 = cpu_ns(0);
}

/*
 * Microseconds of CPU per operation over @n operations: the peer's, and
 * ours less @think_ns of think time spent between them (our own work,
 * not the transport's).  -1 where unknown.
 */
static void cpu_end(const struct cpu_span *c, unsigned n, int64_t think_ns,
		    double *peer_us, double *self_us)
{
	int64_t peer1 = c->peer ? cpu_ns(c->peer) : -1, self1 = cpu_ns(0);
	int64_t self = self1 - c->self0 - think_ns;

	*peer_us = c->peer0 >= 0 && peer1 >= 0 ?
		   (double)(peer1 - c->peer0) / 1000.0 / n : -1;
	*self_us = (double)(self > 0 ? self : 0) / 1000.0 / n;
}

static void fail(const char *what, struct pf_host *h)
{
	fprintf(stderr, "pciefw-bench: %s: %s\n", what, h ? pf_host_error(h) : "");
	exit(1);
}

static bool msix0_at(struct pf_host *h, void *arg)
{
	return pf_host_irqs(h)->msix[0] >= *(uint64_t *)arg;
}

/* One DMA operation of testdev, timed until its MSI-X arrives. */
static int64_t dma_op(struct pf_host *h, unsigned op, uint64_t bytes)
{
	uint64_t want = pf_host_irqs(h)->msix[0];
	int64_t t0 = now_ns();

	for (uint64_t done = 0; done < bytes; done += DMA_CHUNK) {
		uint64_t n = bytes - done < DMA_CHUNK ? bytes - done : DMA_CHUNK;

		pf_host_write32(h, 0, R_DMA_LEN, (uint32_t)n);
		pf_host_write32(h, 0, R_DMA_CMD, 1 | 2 | op << 4);
		want++;
		if (pf_host_wait(h, msix0_at, &want, 30000))
			fail("DMA did not complete", h);
	}
	return now_ns() - t0;
}

/* A plain memcpy of @bytes in DMA_CHUNK pieces: the shm rows' baseline. */
static int64_t memcpy_time(uint64_t bytes)
{
	uint8_t *a = malloc(DMA_CHUNK), *b = malloc(DMA_CHUNK);
	int64_t t0;

	if (!a || !b)
		exit(1);
	memset(a, 0x5a, DMA_CHUNK);
	memset(b, 0, DMA_CHUNK);    /* both touched: no first-fault cost */
	t0 = now_ns();
	for (uint64_t done = 0; done < bytes; done += DMA_CHUNK) {
		uint64_t n = bytes - done < DMA_CHUNK ? bytes - done : DMA_CHUNK;

		memcpy(b, a, n);
		__asm__ volatile("" : : "r"(b) : "memory");
	}
	t0 = now_ns() - t0;
	free(a);
	free(b);
	return t0;
}

/*
 * DMA with guest RAM shared (docs/protocol.md 10): the endpoint copies
 * into our memfd instead of sending messages.  Baseline: memcpy.
 */
static void bench_shm(const char *addr, const struct opts *o)
{
	struct pf_host_opts ho = { .name = "pciefw-bench", .mem_base = GUEST_BASE,
				   .mem_size = DMA_CHUNK, .timeout_ms = 30000,
				   .share_memory = true };
	uint64_t bytes = (uint64_t)o->dma_mib << 20;
	char err[512];
	struct pf_host *h = pf_host_connect(addr, &ho, err, sizeof(err));

	if (!h) {
		fprintf(stderr, "pciefw-bench: shared memory: %s\n", err);
		exit(1);
	}
	if (!(pf_host_session(h)->features & PCIEFW_FEATURE_GUEST_MEMORY)) {
		pf_host_close(h, true);
		return;     /* an endpoint without it: no rows */
	}
	pf_host_write32(h, 0, R_DMA_IRQ, 3);     /* MSI-X vector 0 */
	pf_host_write32(h, 0, R_DMA_DST, (uint32_t)GUEST_BASE);
	pf_host_write32(h, 0, R_DMA_DST + 4, (uint32_t)(GUEST_BASE >> 32));
	pf_host_write32(h, 0, R_DMA_SRC, (uint32_t)GUEST_BASE);
	pf_host_write32(h, 0, R_DMA_SRC + 4, (uint32_t)(GUEST_BASE >> 32));
	/*
	 * Untimed, once each: the first touch of each page of the fresh memfd
	 * faults it in, in both processes, as the baseline's buffers were
	 * touched before its timing (a guest's RAM is long touched by then).
	 */
	dma_op(h, 1, DMA_CHUNK);
	dma_op(h, 2, DMA_CHUNK);
	int64_t tw = dma_op(h, 1, bytes), tr = dma_op(h, 2, bytes);
	int64_t tm = memcpy_time(bytes);

	if (pf_host_stats(h)->dma_writes || pf_host_stats(h)->dma_reads)
		fprintf(stderr, "pciefw-bench: shared memory: some DMA went by messages\n");
	add("shm", "DMA write (vs memcpy)", "MB/s", bytes / (tw / 1e9) / 1e6,
	    bytes / (tm / 1e9) / 1e6, false);
	add("shm", "DMA read (vs memcpy)", "MB/s", bytes / (tr / 1e9) / 1e6,
	    bytes / (tm / 1e9) / 1e6, false);
	pf_host_close(h, true);
}

/* The raw socket's figures of the run: each read row's baseline. */
struct raw_figs {
	double p50, p99;                /* us */
	double peer_cpu, self_cpu;      /* us of CPU per read */
	double piped;                   /* reads/s, o->pipeline in flight */
};

/*
 * @n reads of SCRATCH, @think_us apart, timed one by one: the latency
 * rows of transport @tr and the CPU each side burnt per read, set
 * against the raw socket's figures of the same run.
 */
static void time_reads(struct pf_host *h, const char *tr, const struct opts *o,
		       int64_t *lat, const struct raw_figs *raw)
{
	int64_t think = (int64_t)o->think_us * 1000;
	double ep_cpu, self_cpu;
	struct cpu_span span;
	uint8_t b[4];

	cpu_begin(&span, strcmp(tr, "tcp") ? peer_pid(pf_host_fd(h)) : 0);
	for (unsigned i = 0; i < o->reads; i++) {
		int64_t t0;

		if (i)
			bench_think(think);
		t0 = now_ns();
		if (pf_host_mem_read(h, 0, R_SCRATCH, b, 4))
			fail("read", h);
		lat[i] = now_ns() - t0;
	}
	cpu_end(&span, o->reads, think * (o->reads - 1), &ep_cpu, &self_cpu);
	add(tr, "read latency, median", "us", percentile(lat, o->reads, 0.5),
	    raw->p50, true);
	add(tr, "read latency, p99", "us", percentile(lat, o->reads, 0.99),
	    raw->p99, true);
	if (ep_cpu >= 0)
		add(tr, "read CPU, endpoint", "us/read", ep_cpu, raw->peer_cpu,
		    true);
	add(tr, "read CPU, host", "us/read", self_cpu, raw->self_cpu, true);
}

/*
 * @n reads with o->pipeline of them outstanding at once (spec 5.1 rule
 * 3), a new one started as the oldest completes: reads per second,
 * against the raw socket sending as many requests before reading their
 * answers.
 */
static void pipelined_reads(struct pf_host *h, const char *tr,
			    const struct opts *o, const struct raw_figs *raw)
{
	unsigned depth = o->pipeline, started = 0, done = 0;
	int tickets[PF_HOST_MAX_INFLIGHT];
	uint8_t bufs[PF_HOST_MAX_INFLIGHT][4];
	char metric[48];
	int64_t t0 = now_ns();

	while (done < o->reads) {
		while (started < o->reads && started - done < depth) {
			unsigned slot = started++ % depth;

			tickets[slot] = pf_host_mem_read_start(h, 0, R_SCRATCH,
							       bufs[slot], 4);
			if (tickets[slot] < 0)
				fail("pipelined read", h);
		}
		if (pf_host_finish(h, tickets[done++ % depth]))
			fail("pipelined read", h);
	}
	snprintf(metric, sizeof(metric), "reads, %u in flight", depth);
	add(tr, strdup(metric), "kreads/s",
	    o->reads / ((now_ns() - t0) / 1e9) / 1e3, raw->piped / 1e3, false);
}

/* The raw socket's read figures, as time_reads() and pipelined_reads(). */
static void raw_reads(struct raw_peer *raw, const struct opts *o,
		      size_t req, size_t cpl, int64_t *rlat, struct raw_figs *f)
{
	int64_t think = (int64_t)o->think_us * 1000;
	unsigned depth = o->pipeline, rounds = (o->reads + depth - 1) / depth;
	struct cpu_span span;

	raw_exchange(raw, (uint32_t)req, 1, (uint32_t)cpl, 200, 0, NULL);
	cpu_begin(&span, raw->pid);
	raw_exchange(raw, (uint32_t)req, 1, (uint32_t)cpl, o->reads, think, rlat);
	cpu_end(&span, o->reads, think * (o->reads - 1), &f->peer_cpu,
		&f->self_cpu);
	f->p50 = percentile(rlat, o->reads, 0.5);
	f->p99 = percentile(rlat, o->reads, 0.99);
	if (depth > 1)
		f->piped = rounds * depth /
			   (raw_exchange(raw, (uint32_t)(req * depth), depth,
					 (uint32_t)(cpl * depth), rounds, 0,
					 NULL) / 1e9);
}

/*
 * The same reads with the session on shared-memory rings (docs/
 * protocol.md 11), against the same raw socket figures: the rings must
 * never lose to the socket, whatever the think time.  Transport "rings"
 * with binary register records (11.7), "rings-pb" with every access a
 * protobuf frame, as a 1.3 peer sends it.
 */
static void bench_rings(const char *addr, const struct opts *o, int64_t *lat,
			const struct raw_figs *raw, bool records)
{
	const char *tr = records ? "rings" : "rings-pb";
	struct pf_host_opts ho = { .name = "pciefw-bench", .mem_base = GUEST_BASE,
				   .mem_size = DMA_CHUNK, .timeout_ms = 30000,
				   .shm_rings = true, .reg_records = records };
	char err[512];
	uint8_t b[4];
	struct pf_host *h = pf_host_connect(addr, &ho, err, sizeof(err));

	if (!h) {
		fprintf(stderr, "pciefw-bench: %s: %s\n", tr, err);
		exit(1);
	}
	if (!pf_host_on_rings(h) || pf_host_records(h) != records) {
		pf_host_close(h, true);
		return;     /* an endpoint without them: no rows */
	}
	for (int i = 0; i < 200; i++)
		pf_host_mem_read(h, 0, R_SCRATCH, b, 4);
	time_reads(h, tr, o, lat, raw);
	if (o->pipeline > 1)
		pipelined_reads(h, tr, o, raw);
	pf_host_close(h, true);
}

static void bench_one(const char *addr, const struct opts *o)
{
	const char *tr = strncmp(addr, "tcp:", 4) ? "unix" : "tcp";
	struct pf_host_opts ho = { .name = "pciefw-bench", .mem_base = GUEST_BASE,
				   .mem_size = DMA_CHUNK, .timeout_ms = 30000 };
	struct raw_peer raw;
	char err[512];
	uint8_t b[4];
	struct pf_host *h = pf_host_connect(addr, &ho, err, sizeof(err));
	int64_t *lat = calloc(o->reads, sizeof(*lat));
	int64_t *rlat = calloc(o->reads, sizeof(*rlat));

	if (!h) {
		fprintf(stderr, "pciefw-bench: %s\n", err);
		exit(1);
	}
	if (raw_start(&raw, !strcmp(tr, "tcp"), err, sizeof(err))) {
		fprintf(stderr, "pciefw-bench: baseline: %s\n", err);
		exit(1);
	}
	size_t req = frame_size(put_read_req), cpl = frame_size(put_read_cpl);
	size_t wr = frame_size(put_write);
	uint32_t payload = pf_host_session(h)->max_payload;

	/* Non-posted read round trips, with the think time between reads. */
	struct raw_figs rf = { 0 };

	raw_reads(&raw, o, req, cpl, rlat, &rf);
	for (int i = 0; i < 200; i++)
		pf_host_mem_read(h, 0, R_SCRATCH, b, 4);
	time_reads(h, tr, o, lat, &rf);
	if (o->pipeline > 1)
		pipelined_reads(h, tr, o, &rf);

	/* Posted writes, then one read that flushes them (spec 5.1). */
	int64_t t0 = now_ns();
	for (unsigned i = 0; i < o->writes; i++)
		if (pf_host_write32(h, 0, R_SCRATCH, i))
			fail("write", h);
	if (pf_host_mem_read(h, 0, R_SCRATCH, b, 4))
		fail("read", h);
	double pf_rate = o->writes / ((now_ns() - t0) / 1e9);
	int64_t rt = raw_exchange(&raw, (uint32_t)(wr * o->writes + req),
				  o->writes + 1, (uint32_t)cpl, 1, 0, NULL);
	add(tr, "posted writes", "Mmsg/s", pf_rate / 1e6,
	    o->writes / (rt / 1e9) / 1e6, false);

	/* DMA: FILL is pure DMA write, SUM pure DMA read (docs/testdev.md). */
	uint64_t bytes = (uint64_t)o->dma_mib << 20;
	pf_host_write32(h, 0, R_DMA_IRQ, 3);     /* MSI-X vector 0 */
	pf_host_write32(h, 0, R_DMA_DST, (uint32_t)GUEST_BASE);
	pf_host_write32(h, 0, R_DMA_DST + 4, (uint32_t)(GUEST_BASE >> 32));
	pf_host_write32(h, 0, R_DMA_SRC, (uint32_t)GUEST_BASE);
	pf_host_write32(h, 0, R_DMA_SRC + 4, (uint32_t)(GUEST_BASE >> 32));
	int64_t tw = dma_op(h, 1, bytes), tr_ = dma_op(h, 2, bytes);
	uint32_t chunks = (uint32_t)((bytes + payload - 1) / payload);
	/* Raw: the same bytes, one way, in frames of max payload. */
	int64_t rw = raw_exchange(&raw, (uint32_t)(3 * wr), 3, (uint32_t)bytes, 1,
				  0, NULL);
	int64_t rr = raw_exchange(&raw, (uint32_t)bytes, chunks, (uint32_t)cpl, 1,
				  0, NULL);
	add(tr, "DMA write to guest", "MB/s", bytes / (tw / 1e9) / 1e6,
	    bytes / (rw / 1e9) / 1e6, false);
	add(tr, "DMA read of guest", "MB/s", bytes / (tr_ / 1e9) / 1e6,
	    bytes / (rr / 1e9) / 1e6, false);

	raw_stop(&raw);
	pf_host_close(h, true);
	/* One host at a time (spec 2.4): the rings get the endpoint next. */
	if (!strcmp(tr, "unix") && !o->no_rings) {
		bench_rings(addr, o, lat, &rf, true);
		bench_rings(addr, o, lat, &rf, false);
	}
	free(lat);
	free(rlat);
	if (!strcmp(tr, "unix") && !o->no_shm)
		bench_shm(addr, o);
}

static void print_table(void)
{
	printf("%-8s %-22s %-8s %12s %12s %8s\n", "", "metric", "unit",
	       "pciefw", "raw socket", "ratio");
	for (unsigned i = 0; i < n_results; i++) {
		const struct result *r = &results[i];

		printf("%-8s %-22s %-8s %12.2f %12.2f %7.2fx\n", r->transport,
		       r->metric, r->unit, r->pciefw, r->raw,
		       r->raw > 0 ? r->pciefw / r->raw : 0);
	}
	printf("ratio = pciefw / raw socket (latency: lower is better; rates: higher is better)\n");
}

static void print_json(void)
{
	printf("[\n");
	for (unsigned i = 0; i < n_results; i++) {
		const struct result *r = &results[i];

		printf("  {\"transport\": \"%s\", \"metric\": \"%s\", \"unit\": \"%s\", "
		       "\"pciefw\": %.3f, \"raw\": %.3f, \"ratio\": %.3f, "
		       "\"lower_is_better\": %s}%s\n", r->transport, r->metric, r->unit,
		       r->pciefw, r->raw, r->raw > 0 ? r->pciefw / r->raw : 0,
		       r->lower_is_better ? "true" : "false",
		       i + 1 < n_results ? "," : "");
	}
	printf("]\n");
}

/* Start our own endpoint; returns its pid, sets @addr from its output. */
static pid_t spawn_endpoint(const char *bin, const char *listen, char *addr,
			    size_t addrlen)
{
	int out[2];
	pid_t pid;
	FILE *f;
	char line[300];

	if (pipe(out))
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out[1], 1);
		close(out[0]);
		execl(bin, bin, "--device", "testdev", "--listen", listen,
		      "--log-level", "warn", (char *)NULL);
		fprintf(stderr, "pciefw-bench: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	if (pid < 0 || !f || !fgets(line, sizeof(line), f) ||
	    strncmp(line, "listening on ", 13)) {
		fprintf(stderr, "pciefw-bench: %s did not start\n", bin);
		exit(1);
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	snprintf(addr, addrlen, "%s", line + 13);
	return pid;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: pciefw-bench [OPTION]... [ADDR]...\n"
"Measure a pciefw endpoint serving 'testdev' at each ADDR (tcp:HOST:PORT or\n"
"unix:PATH) against a raw socket exchange of the same sizes on the same\n"
"transport.  With no ADDR, start our own endpoints on UNIX and TCP.\n"
"\n"
"  -n, --reads=N          non-posted reads to time (default 20000)\n"
"  -w, --writes=N         posted writes to time (default 200000)\n"
"  -d, --dma-mib=N        MiB moved by each DMA figure (default 64)\n"
"  -t, --think-us=N       think time between two timed reads: N us of the\n"
"                         host's own work, a busy loop (default 0)\n"
"  -P, --pipeline=N       also time the reads with N of them outstanding at\n"
"                         once (2 to 64; the 'N in flight' rows)\n"
"  -e, --endpoint=PATH    pciefw-endpoint binary for self-started endpoints\n"
"  -p, --pin=CPU          run the benchmark, its endpoints and the baseline\n"
"                         peer on one CPU (cross-CPU wake-ups dominate\n"
"                         small round trips on some machines)\n"
"      --no-shm           leave out the shm rows (DMA with guest RAM shared\n"
"                         with the endpoint, docs/protocol.md 10)\n"
"      --no-rings         leave out the rings rows: the reads again with the\n"
"                         session on shared-memory rings (docs/protocol.md 11),\n"
"                         with binary register records ('rings', 11.7) and\n"
"                         without ('rings-pb')\n"
"      --json             print JSON instead of a table\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n");
}

static unsigned parse_count(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > 100000000 || *s == '-') {
		fprintf(stderr, "pciefw-bench: invalid %s '%s'\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

/* 0 .. 1 s, in microseconds. */
static unsigned parse_think(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v > 1000000 || *s == '-') {
		fprintf(stderr, "pciefw-bench: invalid --think-us '%s' (0 to "
			"1000000)\n", s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reads", required_argument, NULL, 'n' },
		{ "writes", required_argument, NULL, 'w' },
		{ "dma-mib", required_argument, NULL, 'd' },
		{ "think-us", required_argument, NULL, 't' },
		{ "pipeline", required_argument, NULL, 'P' },
		{ "no-rings", no_argument, NULL, 'R' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-shm", no_argument, NULL, 'S' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct opts o = { .reads = 20000, .writes = 200000, .dma_mib = 64,
			  .pipeline = 1 };
	pid_t pids[2] = { 0, 0 };
	char addrs[2][300], dir[] = "/tmp/pciefw-bench-XXXXXX";
	int c;

	while ((c = getopt_long(argc, argv, "n:w:d:t:P:e:p:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.reads = parse_count(optarg, "--reads"); break;
		case 'w': o.writes = parse_count(optarg, "--writes"); break;
		case 'd': o.dma_mib = parse_count(optarg, "--dma-mib"); break;
		case 't': o.think_us = parse_think(optarg); break;
		case 'P':
			o.pipeline = parse_count(optarg, "--pipeline");
			if (o.pipeline < 2 || o.pipeline > PF_HOST_MAX_INFLIGHT) {
				fprintf(stderr, "pciefw-bench: invalid --pipeline '%s' "
					"(2 to %u)\n", optarg, PF_HOST_MAX_INFLIGHT);
				return 2;
			}
			break;
		case 'R': o.no_rings = true; break;
		case 'e': o.endpoint_bin = optarg; break;
		case 'j': o.json = true; break;
		case 'S': o.no_shm = true; break;
		case 'p': {
			cpu_set_t set;
			char *end;
			unsigned long cpu = strtoul(optarg, &end, 10);

			CPU_ZERO(&set);
			if (*end || !*optarg || cpu >= CPU_SETSIZE) {
				fprintf(stderr, "pciefw-bench: invalid --pin '%s'\n", optarg);
				return 2;
			}
			CPU_SET(cpu, &set);
			/* Children (endpoints, baseline peer) inherit the mask. */
			if (sched_setaffinity(0, sizeof(set), &set)) {
				fprintf(stderr, "pciefw-bench: --pin %s: %s\n", optarg,
					strerror(errno));
				return 2;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V':
			printf("pciefw-bench %s (protocol %u.%u)\n", PCIEFW_VERSION,
			       PCIEFW_VERSION_MAJOR, PCIEFW_VERSION_MINOR);
			return 0;
		default:
			/* getopt said which option; the help is one --help away. */
			fprintf(stderr, "Try 'pciefw-bench --help'.\n");
			return 2;
		}
	}
	for (; optind < argc && o.n_addrs < 8; optind++)
		o.addrs[o.n_addrs++] = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	if (!o.n_addrs) {
		char listen[300];
		const char *bin = o.endpoint_bin ? o.endpoint_bin : PCIEFW_ENDPOINT_PATH;

		if (!mkdtemp(dir)) {
			perror("pciefw-bench: mkdtemp");
			return 1;
		}
		snprintf(listen, sizeof(listen), "unix:%s/ep.sock", dir);
		pids[0] = spawn_endpoint(bin, listen, addrs[0], sizeof(addrs[0]));
		pids[1] = spawn_endpoint(bin, "tcp:127.0.0.1:0", addrs[1], sizeof(addrs[1]));
		o.addrs[o.n_addrs++] = addrs[0];
		o.addrs[o.n_addrs++] = addrs[1];
	}
	for (unsigned i = 0; i < o.n_addrs; i++)
		bench_one(o.addrs[i], &o);
	for (int i = 0; i < 2; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	if (pids[0] > 0)
		rmdir(dir);
	if (o.json)
		print_json();
	else
		print_table();
	return 0;
}
