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
