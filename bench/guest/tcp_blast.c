/*
 * tcp-blast: guest side of the NIC throughput benchmark (static binary).
 *
 *   tcp-blast send HOST PORT MIB     send MIB MiB of data, report MB/s
 *   tcp-blast recv HOST PORT         receive until EOF, report MB/s
 *   tcp-blast rr HOST PORT COUNT     COUNT 1-byte request/responses: pkt/s
 *
 * With BENCH_MARKS=1 the connection and the transfer are marked for the
 * host (bench_mark.h): the mark comes before connect() so that no data
 * moves unmarked (a source on the host sends as soon as it accepts).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_mark.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static char buf[256 * 1024];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	double t0, dt;
	long long total = 0;
	int fd, one = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: tcp-blast send|recv|rr HOST PORT [MIB|COUNT]\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[3]));
	inet_pton(AF_INET, argv[2], &sa.sin_addr);
	bench_mark("begin");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "tcp-blast: connect: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t0 = now();
	if (!strcmp(argv[1], "send")) {
		long long want = atoll(argc > 4 ? argv[4] : "64") << 20;

		memset(buf, 0x5a, sizeof(buf));
		while (total < want) {
			ssize_t n = write(fd, buf, sizeof(buf) < (size_t)(want - total) ?
					  sizeof(buf) : (size_t)(want - total));
			if (n <= 0)
				return 1;
			total += n;
		}
		shutdown(fd, SHUT_WR);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	} else if (!strcmp(argv[1], "recv")) {
		ssize_t n;

		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += n;
	} else {
		long count = atol(argc > 4 ? argv[4] : "1000");

		for (long i = 0; i < count; i++) {
			if (write(fd, "x", 1) != 1 || read(fd, buf, 1) != 1)
				return 1;
		}
		dt = now() - t0;
		bench_mark("end");
		printf("RESULT op=rr n=%ld rate_per_s=%.0f\n", count, count / dt);
		return 0;
	}
	dt = now() - t0;
	bench_mark("end");
	printf("RESULT op=%s bytes=%lld seconds=%.3f mbit_s=%.1f\n", argv[1], total, dt,
	       total * 8 / dt / 1e6);
	close(fd);
	return 0;
}
