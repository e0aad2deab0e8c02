/* Guest RAM shared by the host; see shared_ram.h and spec 10.2. */
#include "shared_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared_fd.h"

void pf_shared_ram_clear(struct pf_shared_ram *gm)
{
	for (unsigned i = 0; i < gm->n; i++)
		munmap(gm->r[i].base, gm->r[i].size);
	gm->n = 0;
	gm->fill_region = 0;
	gm->fill_offset = 0;
	gm->filled = 0;
}

unsigned pf_shared_ram_set(struct pf_shared_ram *gm, const Pciefw__MemoryMap *mm,
			  const int *fds, const char *who, pf_shared_ram_log log,
			  void *opaque)
{
	uint64_t total = 0;
	char line[400];

	pf_shared_ram_clear(gm);
	for (size_t i = 0; i < mm->n_regions; i++) {
		const Pciefw__MemoryRegion *r = mm->regions[i];
		char buf[160];
		const char *why = pf_shared_fd_refusal(fds[i], r->fd_offset, r->size, buf, sizeof(buf));
		void *p = MAP_FAILED;

		if (!why && r->size > SIZE_MAX)
			why = "larger than our address space";
		if (!why) {
			p = mmap(NULL, (size_t)r->size, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fds[i], (off_t)r->fd_offset);
			if (p == MAP_FAILED)
				why = strerror(errno);
		}
		close(fds[i]);
		if (why) {
			snprintf(line, sizeof(line), "%s: guest memory region "
				 "0x%llx+0x%llx refused (%s): its DMA goes by "
				 "messages", who, (unsigned long long)r->guest_address,
				 (unsigned long long)r->size, why);
			log(opaque, true, line);
			continue;
		}
		gm->r[gm->n++] = (struct pf_shared_region){
			.guest_address = r->guest_address, .size = r->size, .base = p,
		};
		total += r->size;
	}
	snprintf(line, sizeof(line), "%s: guest memory: %u of %zu regions mapped "
		 "(%llu MiB)", who, gm->n, mm->n_regions,
		 (unsigned long long)(total >> 20));
	log(opaque, false, line);
	return gm->n;
}

#define PAGE 4096u
#define FILL_STEP_MAX (4u << 20)

/* Without MADV_POPULATE_WRITE: a write fault per page, changing nothing. */
static void touch_pages(uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		__atomic_fetch_add(p + off, 0, __ATOMIC_RELAXED);
}

/*
 * Fill the pages of [p, p + len) that the file holds: the bytes filled, or
 * -1 on an error.
 */
static ssize_t fill_present(uint8_t *p, size_t len)
{
	static bool no_populate;
	unsigned char vec[FILL_STEP_MAX / PAGE];
	size_t pages = len / PAGE, filled = 0;

	if (mincore(p, len, vec))
		return -1;
	for (size_t i = 0; i < pages;) {
		size_t run = 0;

		while (i + run < pages && vec[i + run] & 1)
			run++;
		if (run && !no_populate &&
		    madvise(p + i * PAGE, run * PAGE, MADV_POPULATE_WRITE)) {
			if (errno != EINVAL)
				return -1;
			no_populate = true;     /* before Linux 5.14 */
		}
		if (run && no_populate)
			touch_pages(p + i * PAGE, run * PAGE);
		filled += run * PAGE;
		i += run;
		while (i < pages && !(vec[i] & 1))
			i++;
	}
	return (ssize_t)filled;
}

bool pf_shared_ram_prefault(struct pf_shared_ram *gm, uint64_t budget)
{
	if (budget > FILL_STEP_MAX)
		budget = FILL_STEP_MAX;
	budget &= ~(uint64_t)(PAGE - 1);
	while (gm->fill_region < gm->n && budget) {
		struct pf_shared_region *r = &gm->r[gm->fill_region];
		uint64_t n = r->size - gm->fill_offset;
		ssize_t filled;

		if (n > budget)
			n = budget;
		filled = fill_present(r->base + gm->fill_offset, (size_t)n);
		budget -= n;
		gm->fill_offset += n;
		if (filled >= 0)
			gm->filled += (uint64_t)filled;
		/* On an error the rest of the region faults as it is used. */
		if (filled < 0 || gm->fill_offset == r->size) {
			gm->fill_region++;
			gm->fill_offset = 0;
		}
	}
	return gm->fill_region < gm->n;
}

uint8_t *pf_shared_ram_find(const struct pf_shared_ram *gm, uint64_t addr,
			   uint64_t len)
{
	for (unsigned i = 0; i < gm->n; i++) {
		const struct pf_shared_region *r = &gm->r[i];

		/* Offsets, not ends: nothing here can wrap. */
		if (addr >= r->guest_address && addr - r->guest_address < r->size &&
		    len <= r->size - (addr - r->guest_address))
			return r->base + (addr - r->guest_address);
	}
	return NULL;
}
