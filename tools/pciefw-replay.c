/*
 * pciefw-replay: play one side of a recorded pciefw trace (docs/protocol.md
 * section 6) against a live peer and report where the peer's behaviour
 * departs from the recording.
 *
 *   as the host (default): against a live endpoint, e.g. to check that an
 *   endpoint model still behaves as it did, without QEMU or a guest;
 *   as the endpoint (--as-endpoint): serve the recorded device to a live
 *   QEMU, e.g. to check that the host side still sends what it did.
 *
 * The work is in tools/replay/ (engine.c explains the matching rules).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay/replay.h"
#include "transport.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_CONTEXT    5

static void usage(FILE *f)
{
	fprintf(f,
"Usage: pciefw-replay [OPTION]... TRACE ADDR\n"
"       pciefw-replay --as-endpoint --listen ADDR [OPTION]... TRACE\n"
"Replay one side of a pciefw trace (pcapng, written by pciefw-endpoint\n"
"--trace or QEMU's -device pciefw,trace=) against a live peer, and report\n"
"where the peer's messages depart from the recording.\n"
"\n"
"By default, plays the host (QEMU) side against the endpoint at ADDR\n"
"(tcp:HOST:PORT or unix:PATH): the handshake (the endpoint's hello and\n"
"device description are compared with the recorded ones), then the\n"
"recorded requests in order.  The endpoint's DMA reads are answered with the\n"
"recorded data, or from a simulated guest memory (recorded DMA read data and\n"
"live DMA writes) when the live read is not the recorded one.\n"
"With --as-endpoint, listens at ADDR, serves the recorded device\n"
"description, answers each host request with the recorded completion (with\n"
"the live request's tag) and sends the recorded DMA and interrupts after the\n"
"host message that preceded them in the recording.\n"
"\n"
"The peer's messages are compared field by field with the recording, in\n"
"order, in two streams: completions, and everything else (DMA reads and\n"
"writes, interrupts, requests, goodbye).  They may come earlier or later\n"
"relative to what the replay sends than they did in the recording; the\n"
"replay waits for every peer message recorded before the next one it sends.\n"
"\n"
"  -e, --as-endpoint         play the endpoint side (needs --listen)\n"
"  -l, --listen=ADDR         where to listen as the endpoint: tcp:HOST:PORT\n"
"                            or unix:PATH; port 0 picks a free port (the\n"
"                            address is printed as 'listening on ADDR')\n"
"  -t, --timing              keep the recorded delays between the messages we\n"
"                            send (default: as fast as the peer answers)\n"
"  -k, --keep-going          count every divergence instead of stopping at\n"
"                            the first\n"
"      --loose-irqs          match interrupts in order per kind and vector\n"
"                            only, not against DMA and other vectors: an\n"
"                            interrupt held back by a moderation timer (the\n"
"                            nic's ITR, per vector) may then follow DMA that\n"
"                            came after it when recorded, as it does when the\n"
"                            replay runs faster than the recording\n"
"  -i, --ignore=FIELD[,FIELD]  leave these fields out of comparisons: FIELD\n"
"                            of every kind (tag, data, address, ...) or\n"
"                            KIND.FIELD (dma_write.data, completion.data, ...);\n"
"                            hello.peer_name is always ignored\n"
"  -C, --context=N           recorded messages shown before a divergence\n"
"                            (default %d)\n"
"  -T, --timeout=MS          how long to wait for an expected message\n"
"                            (default %d as the host; as the endpoint the\n"
"                            default, 0, waits forever: a guest may idle;\n"
"                            then it bounds the wait for a host to connect)\n"
"  -s, --session=N           replay only the Nth session (connection) of the\n"
"                            trace; default: each in turn, one connection each\n"
"  -u, --until=N             replay the messages up to record #N and stop there\n"
"      --allow-truncated     replay the whole records of a trace that was cut\n"
"                            short (recorder killed); default: refuse it\n"
"      --no-progress         no progress bar (default: one on stderr when it\n"
"                            is a terminal)\n"
"  -h, --help                show this help\n"
"  -V, --version             show the version\n"
"\n"
"Records are numbered from #1, every type counted (sessions, notes and\n"
"malformed input too): as pciefw-trace prints them and Wireshark numbers its\n"
"frames (docs/protocol.md 6).  Only messages are replayed, and not the\n"
"guest-memory and ring set-up (spec 10.5, 11.6).  A divergence is reported\n"
"with the record number, its time in the recording, the expected (recorded)\n"
"and the actual (live) message, where their data first differ (the byte\n"
"offset and both in hex around it), and the recorded messages before it;\n"
"the last line says 'replayed N of M messages ...: N divergences'.\n"
"A replay drives a live peer from the recording's start: replay against a\n"
"fresh endpoint each time (one that served a replay already has state).\n"
"Exit status: 0 the replay matched the recording, 1 it diverged, 2 usage\n"
"error, 3 unreadable trace or connection failure.\n"
"Example: pciefw-replay nic.pcapng unix:/tmp/nic.sock\n",
		DEFAULT_CONTEXT, DEFAULT_TIMEOUT_MS);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "pciefw-replay: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pciefw-replay --help'.\n");
	return RP_EXIT_USAGE;
}

static bool parse_ulong(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return false;
	*v = strtoull(s, &end, 0);
	return !errno && !*end && *v <= max;
}

enum { OPT_ALLOW_TRUNCATED = 256, OPT_NO_PROGRESS, OPT_LOOSE_IRQS };

static int parse_args(int argc, char **argv, struct rp_opts *o)
{
	static const struct option longopts[] = {
		{ "as-endpoint", no_argument, NULL, 'e' },
		{ "listen", required_argument, NULL, 'l' },
		{ "timing", no_argument, NULL, 't' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "ignore", required_argument, NULL, 'i' },
		{ "context", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "session", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "loose-irqs", no_argument, NULL, OPT_LOOSE_IRQS },
		{ "allow-truncated", no_argument, NULL, OPT_ALLOW_TRUNCATED },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen = NULL;
	bool timeout_set = false, no_progress = false;
	unsigned long long v;
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	o->context = DEFAULT_CONTEXT;
	o->until = UINT64_MAX;
	while ((c = getopt_long(argc, argv, "el:tki:C:T:s:u:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->role = RP_AS_ENDPOINT;
			break;
		case 'l':
			listen = optarg;
			break;
		case 't':
			o->timing = true;
			break;
		case 'k':
			o->keep_going = true;
			break;
		case 'i':
			if (rp_ignores_parse(&o->ig, optarg, err, sizeof(err)))
				return usage_error("%s", err);
			break;
		case 'C':
			if (!parse_ulong(optarg, 10000, &v))
				return usage_error("--context '%s': expected 0..10000", optarg);
			o->context = (unsigned)v;
			break;
		case 'T':
			if (!parse_ulong(optarg, 24ull * 3600 * 1000, &v))
				return usage_error("--timeout '%s': expected milliseconds",
						   optarg);
			o->timeout_ms = v ? (int)v : -1;
			timeout_set = true;
			break;
		case 's':
			if (!parse_ulong(optarg, 1000000, &v) || !v)
				return usage_error("--session '%s': expected 1, 2, ...",
						   optarg);
			o->session = (unsigned long)v;
			break;
		case 'u':
			if (!parse_ulong(optarg, UINT64_MAX - 1, &v))
				return usage_error("--until '%s': expected a record number",
						   optarg);
			o->until = v;
			break;
		case OPT_LOOSE_IRQS:
			o->loose_irqs = true;
			break;
		case OPT_ALLOW_TRUNCATED:
			o->allow_truncated = true;
			break;
		case OPT_NO_PROGRESS:
			no_progress = true;
			break;
		case 'h':
			usage(stdout);
			exit(RP_EXIT_MATCH);
		case 'V':
			printf("pciefw-replay %s (protocol %u.%u)\n", PCIEFW_VERSION,
			       PCIEFW_VERSION_MAJOR, PCIEFW_VERSION_MINOR);
			exit(RP_EXIT_MATCH);
		default:
			fprintf(stderr, "Try 'pciefw-replay --help'.\n");
			return RP_EXIT_USAGE;
		}
	}
	if (o->role == RP_AS_ENDPOINT) {
		if (!listen)
			return usage_error("%s", "--as-endpoint needs --listen ADDR");
		if (optind != argc - 1)
			return usage_error("%s", "--as-endpoint takes one argument: TRACE");
		o->addr = listen;
		if (!timeout_set)
			o->timeout_ms = -1;
	} else {
		if (listen)
			return usage_error("%s", "--listen is for --as-endpoint; as the "
					   "host, give the endpoint's ADDR after TRACE");
		if (optind != argc - 2)
			return usage_error("%s", "expected TRACE ADDR");
		o->addr = argv[optind + 1];
		if (!timeout_set)
			o->timeout_ms = DEFAULT_TIMEOUT_MS;
	}
	o->trace = argv[optind];
	o->progress = !no_progress && isatty(STDERR_FILENO);
	/* Check ADDR now: a typo is a usage error, not a connection failure. */
	{
		struct pf_addr a;

		if (pf_addr_parse(o->addr, &a, err, sizeof(err)))
			return usage_error("%s", err);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct rp_opts o;
	struct rp_script s;
	char err[1024];
	int ret = parse_args(argc, argv, &o);

	if (ret)
		return ret;
	if (rp_script_load(o.trace, o.allow_truncated, &s, err, sizeof(err))) {
		fprintf(stderr, "pciefw-replay: %s\n", err);
		return RP_EXIT_FAILED;
	}
	ret = rp_replay(&o, &s);
	rp_script_free(&s);
	return ret;
}
