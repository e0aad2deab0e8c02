/*
 * access-lat: time register accesses from inside the guest, as a driver
 * would make them (static binary for the benchmark guest, bench/).
 *
 *   access-lat mmio RESOURCE_FILE OFFSET COUNT [read|write]
 *   access-lat io PORT COUNT [read|write]
 *
 * RESOURCE_FILE is a /sys/bus/pci/devices/.../resourceN of a memory BAR.
 * Prints: RESULT kind=mmio op=read n=COUNT mean_us=.. p50_us=.. p99_us=..
 * With BENCH_MARKS=1 the timed loop is marked for the host (bench_mark.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench_mark.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void report(const char *kind, const char *op, uint64_t *t, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += t[i];
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("RESULT kind=%s op=%s n=%u mean_us=%.2f p50_us=%.2f p99_us=%.2f\n",
	       kind, op, n, sum / 1e3 / n, t[n / 2] / 1e3, t[(n - 1) * 99 / 100] / 1e3);
}

static int die(const char *what)
{
	fprintf(stderr, "access-lat: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	int is_io = argc >= 2 && !strcmp(argv[1], "io");
	int base = is_io ? 3 : 4;
	unsigned n;
	int write;
	uint64_t *t;

	if (argc < base + 1 || (strcmp(argv[1], "io") && strcmp(argv[1], "mmio"))) {
		fprintf(stderr, "usage: access-lat mmio RESOURCE OFFSET COUNT [read|write]\n"
				"       access-lat io PORT COUNT [read|write]\n");
		return 2;
	}
	n = (unsigned)strtoul(argv[base], NULL, 0);
	write = argc > base + 1 && !strcmp(argv[base + 1], "write");
	if (!n || !(t = calloc(n, sizeof(*t))))
		return 2;
	if (is_io) {
		unsigned port = (unsigned)strtoul(argv[2], NULL, 0);

		if (iopl(3))
			return die("iopl");
		bench_mark("begin");
		for (unsigned i = 0; i < n; i++) {
			uint64_t t0 = now_ns();

			if (write)
				outl(i, (unsigned short)port);
			else
				(void)inl((unsigned short)port);
			t[i] = now_ns() - t0;
		}
		bench_mark("end");
		report("io", write ? "write" : "read", t, n);
		return 0;
	}
	int fd = open(argv[2], O_RDWR | O_SYNC);
	if (fd < 0)
		return die(argv[2]);
	off_t off = (off_t)strtoul(argv[3], NULL, 0);
	/* Map only the page holding the register: BARs may be one page. */
	volatile uint8_t *bar = mmap(NULL, (size_t)(off & ~4095) + 4096,
				     PROT_READ | PROT_WRITE,
				     MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED)
		return die("mmap");
	volatile uint32_t *reg = (volatile uint32_t *)(bar + off);
	bench_mark("begin");
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		if (write)
			*reg = i;
		else
			(void)*reg;
		t[i] = now_ns() - t0;
	}
	bench_mark("end");
	report("mmio", write ? "write" : "read", t, n);
	return 0;
}
