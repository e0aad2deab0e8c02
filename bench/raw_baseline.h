/*
 * The raw-socket baseline of pciefw-bench: a child process that, on the same
 * transport, reads a given number of bytes and answers with a given number,
 * so each pciefw figure can be set against plain socket I/O of the same
 * message sizes measured in the same run.
 */
#ifndef PCIEFW_RAW_BASELINE_H
#define PCIEFW_RAW_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct raw_peer {
	pid_t pid;
	int fd;               /* client side, connected */
	char path[128];       /* UNIX socket path, removed by raw_stop */
};

/* Start the echo child on a UNIX socket (@tcp false) or TCP loopback. */
int raw_start(struct raw_peer *p, bool tcp, char *err, size_t errlen);
void raw_stop(struct raw_peer *p);

/*
 * One exchange pattern: the client sends @rounds times (@in bytes in
 * @in_msgs writes), and after each round the peer answers @out bytes;
 * before each round but the first the client thinks for @think_ns
 * (bench_think()).  Returns per-round latencies in ns in @lat (may be
 * NULL), total ns.
 */
int64_t raw_exchange(struct raw_peer *p, uint32_t in, uint32_t in_msgs,
		     uint32_t out, uint32_t rounds, int64_t think_ns,
		     int64_t *lat);

/*
 * A requester's think time between two requests: @ns of its own work,
 * spent on the CPU (a busy loop), as a vCPU running guest code would.
 */
void bench_think(int64_t ns);

#endif
