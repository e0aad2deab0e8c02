/*
 * pciefw-endpoint: serves one device model to a QEMU pciefw device (or
 * any host-side peer) over TCP or a UNIX socket.
 */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_spec.h"
#include "endpoint.h"
#include "log.h"
#include "server.h"
#include "size.h"
#include "tls.h"

#define DEFAULT_LISTEN "tcp:127.0.0.1:7420"
#define MAX_OPTS PF_MAX_MODEL_OPTS

static void usage(FILE *f)
{
	fprintf(f,
"Usage: pciefw-endpoint [OPTION]... --device MODEL[,NAME=VALUE]...\n"
"Serve a PCIe device model to a QEMU 'pciefw' device over TCP or a UNIX socket.\n"
"\n"
"  -d, --device=MODEL[,NAME=VALUE...]  device model to serve, with options\n"
"  -O, --opt=NAME=VALUE       set a model option (repeatable)\n"
"  -l, --listen=ADDR          tcp:HOST:PORT or unix:PATH (repeatable);\n"
"                             default " DEFAULT_LISTEN "; PORT 0 picks a free port\n"
"      --tls-creds=DIR        TLS on TCP listeners, with DIR/server-cert.pem and\n"
"                             DIR/server-key.pem (QEMU's tls-creds-x509 layout;\n"
"                             ./dev tls-certs makes them); an error when every\n"
"                             --listen is a UNIX socket (they never use TLS)\n"
"      --tls-verify-peer      require hosts' client certificates, signed by\n"
"                             DIR/ca-cert.pem\n"
"      --no-guest-memory      do not offer to map guest RAM (DMA by copy) on\n"
"                             UNIX sockets: all DMA goes by messages\n"
"      --no-shm-rings         do not offer shared-memory rings on UNIX sockets:\n"
"                             every message goes through the socket\n"
"      --no-reg-records       do not offer binary register records on the rings\n"
"                             (docs/protocol.md 11.7): register accesses and\n"
"                             their completions stay protobuf messages\n"
"      --max-payload=BYTES    largest data payload accepted (default %u, max %u)\n"
"      --hello-timeout=SECONDS  how long a connected host has to send its Hello,\n"
"                             TLS handshake included (default 10; 0.1 to 3600)\n"
"      --trace=FILE           record every message both ways (pcapng)\n"
"      --trace-limit=BYTES    rotate the trace at this size (FILE.1, FILE.2, ...);\n"
"                             at least 4096, suffixes K, M, G\n"
"      --trace-files=N        rotated files to keep (default 4)\n"
"      --log-level=LEVEL      error, warn, info (default) or debug\n"
"      --list-devices         list the device models and their options\n"
"      --check                check the --device model and its option names\n"
"                             (not their values) and exit: 0 if known\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Each listening address is printed on stdout as 'listening on ADDR'.\n"
"SIGINT or SIGTERM says goodbye to the connected host and exits 0.\n"
"On a UNIX socket path where another process listens the endpoint does not\n"
"start; a socket file nobody listens on (left by a killed run) is replaced.\n"
"Exit status: 0 after SIGINT or SIGTERM, 2 for a bad option or an address\n"
"another process holds (or a path that is no socket), 1 for other failures.\n"
"Protocol: docs/protocol.md.  Example:\n"
"  pciefw-endpoint --listen unix:/tmp/testdev.sock --device testdev\n",
		PCIEFW_DEFAULT_PAYLOAD, PCIEFW_MAX_PAYLOAD);
}

static void list_devices(FILE *f)
{
	for (const struct pf_model *m = pf_model_first(); m; m = m->next) {
		fprintf(f, "%-10s %s\n", m->name, m->summary);
		for (const struct pf_model_option *o = m->options; o && o->name; o++)
			fprintf(f, "    %s=VALUE  %s (default: %s)\n", o->name,
				o->help, o->def && *o->def ? o->def : "none");
	}
}

static struct pf_server *server;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	pf_info("signal %d: shutting down", w->signum);
	pf_server_shutdown(server, "endpoint shutting down");
	ev_break(loop, EVBREAK_ALL);
}

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "pciefw-endpoint: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pciefw-endpoint --help'.\n");
	return 2;
}

/* Does any of the --listen addresses name TCP? (Bad ones fail later.) */
static bool any_tcp(const char *const *listen, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(listen[i], "tcp:", 4))
			return true;
	return false;
}

static int fail_payload(const char *arg)
{
	char why[160];

	snprintf(why, sizeof(why), "invalid --max-payload '%%s' (bytes, %u to %u)",
		 PCIEFW_MIN_PAYLOAD, PCIEFW_MAX_PAYLOAD);
	return fail(why, arg);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "opt", required_argument, NULL, 'O' },
		{ "listen", required_argument, NULL, 'l' },
		{ "max-payload", required_argument, NULL, 'p' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "tls-creds", required_argument, NULL, 'C' },
		{ "tls-verify-peer", no_argument, NULL, 'P' },
		{ "no-guest-memory", no_argument, NULL, 'G' },
		{ "no-shm-rings", no_argument, NULL, 'R' },
		{ "no-reg-records", no_argument, NULL, 'B' },
		{ "trace", required_argument, NULL, 't' },
		{ "trace-limit", required_argument, NULL, 'T' },
		{ "trace-files", required_argument, NULL, 'F' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "list-devices", no_argument, NULL, 'D' },
		{ "check", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *listen[8];
	size_t n_listen = 0, n_opts = 0;
	char *opts[MAX_OPTS], *device = NULL;
	const char *trace_path = NULL, *tls_dir = NULL;
	bool tls_verify_peer = false, guest_memory = true, shm_rings = true;
	bool reg_records = true;
	bool check_only = false;
	unsigned long max_payload = PCIEFW_DEFAULT_PAYLOAD;
	double hello_timeout = PF_HELLO_TIMEOUT_S;
	unsigned long long trace_limit = 0;
	unsigned long trace_files = 4;
	int level = PF_LOG_INFO, c;
	char err[300];

	while ((c = getopt_long(argc, argv, "d:O:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case 'O':
			if (n_opts == MAX_OPTS)
				return fail("too many options at '%s'", optarg);
			opts[n_opts++] = optarg;
			break;
		case 'l':
			if (n_listen == 8)
				return fail("too many --listen addresses at '%s'", optarg);
			listen[n_listen++] = optarg;
			break;
		case 'p': {
			char *end;

			errno = 0;
			max_payload = strtoul(optarg, &end, 0);
			if (errno || *end || optarg[0] == '-' ||
			    max_payload < PCIEFW_MIN_PAYLOAD ||
			    max_payload > PCIEFW_MAX_PAYLOAD)
				return fail_payload(optarg);
			break;
		}
		case 'H': {
			char *end;

			errno = 0;
			hello_timeout = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(hello_timeout >= 0.1) ||
			    hello_timeout > 3600)
				return fail("invalid --hello-timeout '%s' (seconds, 0.1 "
					    "to 3600)", optarg);
			break;
		}
		case 't':
			trace_path = optarg;
			break;
		case 'C':
			tls_dir = optarg;
			break;
		case 'P':
			tls_verify_peer = true;
			break;
		case 'G':
			guest_memory = false;
			break;
		case 'R':
			shm_rings = false;
			break;
		case 'B':
			reg_records = false;
			break;
		case 'T': {
			uint64_t v;

			if (pf_parse_size(optarg, &v) || v < 4096 || v > (1ull << 50))
				return fail("invalid --trace-limit '%s' (bytes, at least 4096; "
					    "suffix K, M or G)", optarg);
			trace_limit = v;
			break;
		}
		case 'F': {
			char *end;

			errno = 0;
			trace_files = strtoul(optarg, &end, 10);
			if (errno || *end || !trace_files || trace_files > 1000)
				return fail("invalid --trace-files '%s' (1..1000)", optarg);
			break;
		}
		case 'L':
			level = pf_log_parse_level(optarg);
			if (level < 0)
				return fail("unknown log level '%s' (error, warn, info, debug)",
					    optarg);
			break;
		case 'D':
			list_devices(stdout);
			return 0;
		case 'K':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			printf("\nDevice models:\n");
			list_devices(stdout);
			return 0;
		case 'V':
			printf("pciefw-endpoint %s (protocol %u.%u)\n", PCIEFW_VERSION,
			       PCIEFW_VERSION_MAJOR, PCIEFW_VERSION_MINOR);
			return 0;
		default:
			/* getopt said which option; the help is one --help away. */
			fprintf(stderr, "Try 'pciefw-endpoint --help'.\n");
			return 2;
		}
	}
	if (optind < argc)
		return fail("unexpected argument '%s'", argv[optind]);
	if (!device)
		return fail("%s", "no --device given (see --list-devices)");
	if (tls_verify_peer && !tls_dir)
		return fail("%s", "--tls-verify-peer needs --tls-creds DIR");
	if (!n_listen)
		listen[n_listen++] = DEFAULT_LISTEN;
	if (tls_dir && !any_tcp(listen, n_listen))
		return fail("%s", "--tls-creds is for TCP listeners, and every --listen "
			    "here is a UNIX socket, which never uses TLS (owner-only "
			    "instead: docs/protocol.md 1.5)");

	pf_log_init("pciefw-endpoint", (enum pf_log_level)level);
	signal(SIGPIPE, SIG_IGN);

	struct pf_device_spec spec;
	if (pf_device_spec_parse(device, opts, n_opts, &spec, err, sizeof(err)))
		return fail("%s", err);
	const struct pf_model *model = spec.model;

	/* Nothing opened, bound or created: a script's early check. */
	if (check_only) {
		if (pf_dev_check_options(model, spec.opts, spec.n_opts, err,
					 sizeof(err)))
			return fail("%s", err);
		printf("device %s: model and option names known\n", model->name);
		return 0;
	}

	struct ev_loop *loop = EV_DEFAULT;

	/*
	 * DMA buffers of up to 16 MiB come and go per transfer: keep them in
	 * the heap rather than mmap and unmap each (every page would fault
	 * again, and faults are what a copy into shared RAM costs most).
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	struct pf_dev *dev = pf_dev_create(model, loop, spec.opts, spec.n_opts, err,
					   sizeof(err));
	if (!dev)
		return fail("%s", err);

	struct pf_server_config cfg = { .dev = dev };
	if (tls_dir) {
		cfg.tls = pf_tls_new(tls_dir, tls_verify_peer, err, sizeof(err));
		if (!cfg.tls) {
			pf_dev_destroy(dev);
			return fail("%s", err);
		}
	}
	pf_hello_defaults(&cfg.hello, "pciefw-endpoint " PCIEFW_VERSION);
	cfg.hello.max_payload = (uint32_t)max_payload;
	cfg.guest_memory = guest_memory;
	cfg.shm_rings = shm_rings;
	cfg.reg_records = reg_records;
	cfg.hello_timeout_s = hello_timeout;
	if (trace_path) {
		cfg.trace = pf_trace_create(trace_path, "pciefw-endpoint", err, sizeof(err));
		if (!cfg.trace) {
			pf_dev_destroy(dev);
			return fail("%s", err);
		}
		pf_trace_set_limit(cfg.trace, trace_limit, (unsigned)trace_files);
	}
	server = pf_server_new(loop, &cfg);
	for (size_t i = 0; i < n_listen; i++) {
		struct pf_addr addr;

		if (pf_addr_parse(listen[i], &addr, err, sizeof(err))) {
			pf_err("%s", err);
			return 2;
		}
		if (pf_server_listen(server, &addr, err, sizeof(err))) {
			/* Taken by another process, or a file of the user's. */
			bool taken = errno == EADDRINUSE || errno == EEXIST;

			pf_err("%s", err);
			return taken ? 2 : 1;
		}
	}

	ev_signal sigint, sigterm;
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);

	pf_info("serving device %s", model->name);
	ev_run(loop, 0);

	pf_dev_destroy(dev);
	pf_server_free(server);
	pf_tls_free(cfg.tls);
	if (cfg.trace && pf_trace_close(cfg.trace)) {
		pf_err("writing trace %s failed", trace_path);
		return 1;
	}
	return 0;
}
