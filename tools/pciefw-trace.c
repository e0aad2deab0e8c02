/*
 * pciefw-trace: print a pciefw trace (docs/protocol.md section 6) as text,
 * filtered by message kind, direction, BAR or address range, or summarize
 * it: counts per kind, DMA bytes, request-to-completion latencies.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "format.h"
#include "percentile.h"
#include "trace.h"

#define MAX_KINDS 32
#define PENDING_SLOTS 4096

struct filter {
	bool kinds[MAX_KINDS];
	bool any_kind;
	int bar;                       /* -1: any */
	bool have_range;
	unsigned long long lo, hi;
	int dir;                       /* -1: any */
};

struct latency {
	double *us;
	size_t n, cap;
};

struct stats {
	uint64_t count[2][MAX_KINDS];
	uint64_t dma_read_bytes, dma_write_bytes, mmio_read_bytes, mmio_write_bytes;
	/* Outstanding non-posted requests, by direction and tag. */
	struct { uint32_t tag; uint64_t ts; int kind; bool used; } pending[2][PENDING_SLOTS];
	struct latency lat[MAX_KINDS];
	uint64_t first_ts, last_ts;
	/* Records of every type (the last one's number), and by type. */
	uint64_t records, messages, sessions, notes, malformed;
	uint64_t regrecs;        /* messages that travelled as binary records */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: pciefw-trace [OPTION]... FILE\n"
"Print a pciefw trace (pcapng, written by --trace / trace=) as text.\n"
"\n"
"  -k, --kind=KIND[,KIND]  only these kinds (mem_read, mem_write, io_read,\n"
"                          io_write, config_read, config_write, completion,\n"
"                          dma_read, dma_write, intx, msi, msix, reset, ...)\n"
"  -d, --dir=DIR           only messages to 'endpoint' or to 'host'\n"
"  -b, --bar=N             only accesses to BAR N\n"
"  -a, --addr=LO[-HI]      only messages whose target address (BAR offset,\n"
"                          DMA bus address, config offset) overlaps LO..HI\n"
"  -s, --stats             print statistics instead of messages: counts per\n"
"                          kind, bytes moved, request-to-completion latency\n"
"  -h, --help              show this help\n"
"  -V, --version           show the version\n"
"\n"
"Each line: record number, seconds since the first record, direction\n"
"(H>E: host to endpoint, E>H: endpoint to host), the message.  Records are\n"
"numbered from #1, every type counted: Wireshark's frame numbers, and the\n"
"numbers pciefw-replay reports and --until takes (docs/protocol.md 6).\n"
"A line '--- session: ...' marks where a connection begins, '^' a note on\n"
"the message before it; '[binary record]' ends a message that travelled as a\n"
"binary register record (docs/protocol.md 11.7); 'MALFORMED n bytes:'\n"
"shows input the recorder could not take as a message (they are shown unless\n"
"--kind, --bar or --addr select messages).  --stats counts records of every\n"
"type, then messages by kind; its percentiles are nearest-rank.  Data of 1,\n"
"2, 4 or 8 bytes (register accesses, their completions) is shown as its\n"
"value, data=0x00000003 (little-endian on the wire); other data, and DMA\n"
"writes, as bytes.\n"
"Exit status: 0, or 1 if the file is unreadable, truncated or corrupt.\n");
}

/* A usage error: one line, and where the help is. */
static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "pciefw-trace: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pciefw-trace --help'.\n");
	return 2;
}

static int parse_filter(int argc, char **argv, struct filter *f, bool *stats)
{
	static const struct option longopts[] = {
		{ "kind", required_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' },
		{ "bar", required_argument, NULL, 'b' },
		{ "addr", required_argument, NULL, 'a' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	f->bar = -1;
	f->dir = -1;
	while ((c = getopt_long(argc, argv, "k:d:b:a:shV", longopts, NULL)) != -1) {
		char *end, *save = NULL, *k;

		switch (c) {
		case 'k':
			for (k = strtok_r(optarg, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
				int kind = pf_msg_kind_from_name(k);

				if (!kind)
					return fail("unknown message kind '%s'", k);
				f->kinds[kind] = true;
				f->any_kind = true;
			}
			break;
		case 'd':
			if (!strcmp(optarg, "endpoint"))
				f->dir = PF_DIR_TO_ENDPOINT;
			else if (!strcmp(optarg, "host"))
				f->dir = PF_DIR_TO_HOST;
			else
				return fail("--dir '%s': expected endpoint or host", optarg);
			break;
		case 'b':
			errno = 0;
			f->bar = (int)strtol(optarg, &end, 0);
			if (errno || *end || f->bar < 0 || f->bar > 5)
				return fail("--bar '%s': expected 0..5", optarg);
			break;
		case 'a':
			errno = 0;
			f->lo = strtoull(optarg, &end, 0);
			f->hi = f->lo;
			if (*end == '-')
				f->hi = strtoull(end + 1, &end, 0);
			if (errno || *end || f->hi < f->lo)
				return fail("--addr '%s': expected LO or LO-HI", optarg);
			f->have_range = true;
			break;
		case 's':
			*stats = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("pciefw-trace %s (protocol %u.%u)\n", PCIEFW_VERSION,
			       PCIEFW_VERSION_MAJOR, PCIEFW_VERSION_MINOR);
			exit(0);
		default:
			/* getopt said which option; the help is one --help away. */
			fprintf(stderr, "Try 'pciefw-trace --help'.\n");
			return 2;
		}
	}
	if (optind != argc - 1)
		return fail("%s", optind == argc ? "no trace FILE given" :
			    "expected one trace FILE");
	return 0;
}

/* A session, note or malformed record, as one line (spec 6). */
static void print_special(const struct pf_trace_record *r, uint64_t first)
{
	double t = (double)(int64_t)(r->ts_ns - first) / 1e9;

	if (r->type == PF_REC_NOTE) {
		printf("#%-6llu %+12.6f  ^   %.*s\n", (unsigned long long)r->index,
		       t, (int)r->body_len, (const char *)r->body);
		return;
	}
	if (r->type == PF_REC_SESSION) {
		printf("#%-6llu %+12.6f ---  session: %.*s\n",
		       (unsigned long long)r->index, t, (int)r->body_len,
		       (const char *)r->body);
		return;
	}
	printf("#%-6llu %+12.6f %s  MALFORMED %zu bytes:",
	       (unsigned long long)r->index, t,
	       r->dir == PF_DIR_TO_ENDPOINT ? "H>E" : "E>H", r->body_len);
	for (size_t i = 0; i < r->body_len && i < 32; i++)
		printf(" %02x", r->body[i]);
	printf("%s\n", r->body_len > 32 ? " ..." : "");
}

static bool matches(const struct filter *f, const struct pf_trace_record *r,
		    const PfMessage *m)
{
	int bar;
	unsigned long long addr, size;
	bool has_target = pf_msg_target(m, &bar, &addr, &size);

	if (f->dir >= 0 && (int)r->dir != f->dir)
		return false;
	if (f->any_kind && (!m || !f->kinds[m->body_case]))
		return false;
	if (f->bar >= 0 && (!has_target || bar != f->bar))
		return false;
	if (f->have_range && (!has_target || addr > f->hi ||
			      addr + (size ? size - 1 : 0) < f->lo))
		return false;
	return true;
}

static void lat_add(struct latency *l, double us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		double *p = realloc(l->us, cap * sizeof(*p));

		if (!p)
			return;
		l->us = p;
		l->cap = cap;
	}
	l->us[l->n++] = us;
}

static void account(struct stats *s, const struct pf_trace_record *r,
		    const PfMessage *m)
{
	uint32_t tag;
	int dir = (int)r->dir;

	s->messages++;
	s->regrecs += r->regrec;
	s->count[dir][m->body_case]++;
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_DMA_WRITE:
		s->dma_write_bytes += m->dma_write->data.len;
		break;
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
		s->mmio_write_bytes += m->mem_write->data.len;
		break;
	case PCIEFW__MESSAGE__BODY_COMPLETION: {
		/* A completion answers the other direction's request. */
		unsigned slot = m->completion->tag % PENDING_SLOTS;
		int other = !dir;

		if (s->pending[other][slot].used &&
		    s->pending[other][slot].tag == m->completion->tag) {
			int kind = s->pending[other][slot].kind;

			lat_add(&s->lat[kind],
				(double)(int64_t)(r->ts_ns - s->pending[other][slot].ts) / 1e3);
			if (kind == PCIEFW__MESSAGE__BODY_DMA_READ)
				s->dma_read_bytes += m->completion->data.len;
			if (kind == PCIEFW__MESSAGE__BODY_MEM_READ)
				s->mmio_read_bytes += m->completion->data.len;
			s->pending[other][slot].used = false;
		}
		return;
	}
	default:
		break;
	}
	if (pf_msg_tag(m, &tag)) {
		unsigned slot = tag % PENDING_SLOTS;

		s->pending[dir][slot].tag = tag;
		s->pending[dir][slot].ts = r->ts_ns;
		s->pending[dir][slot].kind = m->body_case;
		s->pending[dir][slot].used = true;
	}
}

/* Tags start afresh in each session: forget the previous one's requests. */
static void new_session(struct stats *s)
{
	s->sessions++;
	memset(s->pending, 0, sizeof(s->pending));
}

/* Every record, whatever its type: the span and the count (#1..#N). */
static void count_record(struct stats *s, const struct pf_trace_record *r)
{
	if (!s->records++)
		s->first_ts = r->ts_ns;
	s->last_ts = r->ts_ns;
	if (r->type == PF_REC_SESSION)
		new_session(s);
	else if (r->type == PF_REC_NOTE)
		s->notes++;
	else if (r->type == PF_REC_MALFORMED)
		s->malformed++;
}

static void print_stats(struct stats *s)
{
	printf("%llu records (#1 to #%llu) over %.6f s\n",
	       (unsigned long long)s->records, (unsigned long long)s->records,
	       s->records ? (s->last_ts - s->first_ts) / 1e9 : 0.0);
	printf("messages %llu, sessions %llu, notes %llu, malformed records %llu\n",
	       (unsigned long long)s->messages, (unsigned long long)s->sessions,
	       (unsigned long long)s->notes, (unsigned long long)s->malformed);
	printf("messages carried as binary register records %llu\n\n",
	       (unsigned long long)s->regrecs);
	printf("%-20s %12s %12s\n", "kind", "host>endpt", "endpt>host");
	for (int k = 1; k < MAX_KINDS; k++)
		if (s->count[0][k] || s->count[1][k])
			printf("%-20s %12llu %12llu\n", pf_msg_kind_name(k),
			       (unsigned long long)s->count[0][k],
			       (unsigned long long)s->count[1][k]);
	printf("\nbytes: MMIO read %llu, MMIO written %llu, DMA read %llu, DMA written %llu\n",
	       (unsigned long long)s->mmio_read_bytes,
	       (unsigned long long)s->mmio_write_bytes,
	       (unsigned long long)s->dma_read_bytes,
	       (unsigned long long)s->dma_write_bytes);
	printf("\nrequest to completion, microseconds:\n");
	printf("%-20s %8s %10s %10s %10s %10s\n", "request", "count", "median",
	       "p90", "p99", "max");
	for (int k = 1; k < MAX_KINDS; k++) {
		struct latency *l = &s->lat[k];

		if (!l->n)
			continue;
		pf_sort_doubles(l->us, l->n);
		printf("%-20s %8zu %10.1f %10.1f %10.1f %10.1f\n", pf_msg_kind_name(k),
		       l->n, pf_percentile(l->us, l->n, 50),
		       pf_percentile(l->us, l->n, 90), pf_percentile(l->us, l->n, 99),
		       l->us[l->n - 1]);
		free(l->us);
	}
}

int main(int argc, char **argv)
{
	struct filter f = { 0 };
	bool want_stats = false;
	struct pf_trace_reader *r;
	struct pf_trace_record rec;
	struct pf_codec codec;
	struct stats *s;
	uint64_t first = 0, bad = 0;
	bool shown = false;         /* the last message record was printed */
	char err[512], line[2048];
	int ret;

	ret = parse_filter(argc, argv, &f, &want_stats);
	if (ret)
		return ret;
	r = pf_trace_open(argv[optind], err, sizeof(err));
	if (!r) {
		fprintf(stderr, "pciefw-trace: %s\n", err);
		return 1;
	}
	s = calloc(1, sizeof(*s));
	pf_codec_init(&codec);
	pf_trace_want_all(r);
	while ((ret = pf_trace_next(r, &rec, err, sizeof(err))) == PF_OK) {
		PfMessage *m = NULL;
		char why[256];

		if (rec.index == 1)
			first = rec.ts_ns;
		if (want_stats)
			count_record(s, &rec);
		if (rec.type == PF_REC_NOTE) {
			/* A note goes with the message before it. */
			if (!want_stats && shown)
				print_special(&rec, first);
			continue;
		}
		shown = false;
		if (rec.type != PF_REC_MESSAGE) {
			/* Shown unless a filter asks for particular messages. */
			if (!want_stats && !f.any_kind && f.bar < 0 && !f.have_range &&
			    (f.dir < 0 || rec.type == PF_REC_SESSION ||
			     (int)rec.dir == f.dir))
				print_special(&rec, first);
			continue;
		}
		if (pf_codec_decode(&codec, rec.body, rec.body_len, &m, why, sizeof(why))) {
			bad++;
			if (!want_stats && !f.any_kind)
				printf("#%-6llu %+12.6f %s  <%s>\n",
				       (unsigned long long)rec.index,
				       (double)(int64_t)(rec.ts_ns - first) / 1e9,
				       rec.dir == PF_DIR_TO_ENDPOINT ? "H>E" : "E>H", why);
			continue;
		}
		if (want_stats) {
			account(s, &rec, m);
			continue;
		}
		if (!matches(&f, &rec, m))
			continue;
		printf("#%-6llu %+12.6f %s  %s%s\n", (unsigned long long)rec.index,
		       (double)(int64_t)(rec.ts_ns - first) / 1e9,
		       rec.dir == PF_DIR_TO_ENDPOINT ? "H>E" : "E>H",
		       pf_msg_format(m, line, sizeof(line)),
		       rec.regrec ? "  [binary record]" : "");
		shown = true;
	}
	if (want_stats)
		print_stats(s);
	free(s);
	pf_codec_free(&codec);
	pf_trace_close_reader(r);
	if (ret != PF_EOF) {
		fprintf(stderr, "pciefw-trace: %s: %s\n", argv[optind], err);
		return 1;
	}
	if (bad) {
		fprintf(stderr, "pciefw-trace: %s: %llu undecodable records\n",
			argv[optind], (unsigned long long)bad);
		return 1;
	}
	return 0;
}
