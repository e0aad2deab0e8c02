/*
 * dma-bench: time DMA copies of a device with testdev's DMA registers
 * (docs/testdev.md: testdev, and the RTL examples of docs/hdl.md) from
 * inside the guest (static binary for the benchmark guest, bench/).
 *
 *   dma-bench RESOURCE0 SRC DST BYTES COUNT
 *
 * RESOURCE0 is the device's /sys/bus/pci/devices/.../resource0; SRC and
 * DST bus addresses of guest RAM the kernel leaves alone (memmap=).  Each
 * copy is started and polled to completion.  Prints:
 * RESULT kind=dma op=copy bytes=B n=N mean_ms=.. p50_ms=.. mib_s=.. (p50)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REG_DMA_SRC    0x10
#define REG_DMA_DST    0x18
#define REG_DMA_LEN    0x20
#define REG_DMA_CMD    0x24
#define REG_DMA_STATUS 0x28
#define ST_BUSY  1u
#define ST_DONE  2u
#define ST_ERROR 4u

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

static void wr(volatile uint8_t *bar, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(bar + off) = v;
}

static uint32_t rd(volatile uint8_t *bar, unsigned off)
{
	return *(volatile uint32_t *)(bar + off);
}

int main(int argc, char **argv)
{
	uint64_t src, dst, sum = 0, *t;
	uint32_t bytes;
	unsigned n;
	volatile uint8_t *bar;
	int fd;

	if (argc != 6) {
		fprintf(stderr, "usage: dma-bench RESOURCE0 SRC DST BYTES COUNT\n");
		return 2;
	}
	src = strtoull(argv[2], NULL, 0);
	dst = strtoull(argv[3], NULL, 0);
	bytes = (uint32_t)strtoul(argv[4], NULL, 0);
	n = (unsigned)strtoul(argv[5], NULL, 0);
	if (!n || !bytes || !(t = calloc(n, sizeof(*t))))
		return 2;
	fd = open(argv[1], O_RDWR | O_SYNC);
	if (fd < 0) {
		fprintf(stderr, "dma-bench: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED) {
		fprintf(stderr, "dma-bench: mmap: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0;
		uint32_t st;

		wr(bar, REG_DMA_STATUS, ST_DONE | ST_ERROR);
		wr(bar, REG_DMA_SRC, (uint32_t)src);
		wr(bar, REG_DMA_SRC + 4, (uint32_t)(src >> 32));
		wr(bar, REG_DMA_DST, (uint32_t)dst);
		wr(bar, REG_DMA_DST + 4, (uint32_t)(dst >> 32));
		wr(bar, REG_DMA_LEN, bytes);
		t0 = now_ns();
		wr(bar, REG_DMA_CMD, 1);
		while ((st = rd(bar, REG_DMA_STATUS)) & ST_BUSY || !(st & (ST_DONE | ST_ERROR)))
			;
		t[i] = now_ns() - t0;
		if (st & ST_ERROR) {
			fprintf(stderr, "dma-bench: the copy failed (status 0x%x)\n", st);
			return 1;
		}
		sum += t[i];
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("RESULT kind=dma op=copy bytes=%u n=%u mean_ms=%.3f p50_ms=%.3f "
	       "mib_s=%.1f\n", bytes, n, sum / 1e6 / n, t[n / 2] / 1e6,
	       bytes / 1048576.0 / (t[n / 2] / 1e9));
	return 0;
}
