/*
 * libFuzzer target: a shared-memory ring region (docs/protocol.md 11) as a
 * hostile peer could leave it.  The input is the region's bytes; the
 * target attaches both rings both ways, then reads and writes through
 * them: every index the peer wrote is checked, nothing is touched outside
 * the region (ASan sees any access past the copy), and a read never
 * returns more than the ring holds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pciefw.h"
#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[PF_RING_MIN_BYTES * 2];
	uint8_t *region;
	char err[200];

	if (size < 8)
		return 0;
	/* Exactly the bytes given, aligned as a mapping is. */
	region = aligned_alloc(64, (size + 63) & ~(size_t)63);
	if (!region)
		return 0;
	memcpy(region, data, size);
	for (int dir = 0; dir < 2; dir++) {
		for (int producer = 0; producer < 2; producer++) {
			struct pf_ring r;
			ssize_t n;

			if (pf_ring_attach(&r, region, size, dir, producer, err,
					   sizeof(err)) != PF_OK)
				continue;
			check(pf_ring_region_size(r.size) <= size);
			if (producer) {
				n = pf_ring_write(&r, buf, sizeof(buf));
				check(n < 0 ? r.corrupt : (size_t)n <= r.size);
				pf_ring_producer_wait(&r);
			} else {
				check(pf_ring_readable(&r) <= r.size);
				n = pf_ring_read(&r, buf, sizeof(buf));
				check(n < 0 ? r.corrupt : (size_t)n <= sizeof(buf));
				pf_ring_consumer_sleep(&r);
			}
		}
	}
	free(region);
	return 0;
}
