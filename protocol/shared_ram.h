/*
 * Guest RAM the host shared with the endpoint (docs/protocol.md 10): the
 * regions of the last MemoryMap that could be mapped safely, and lookups
 * that say whether a DMA range lies wholly inside one of them.  Used by
 * every endpoint: the daemon and QEMU's pciefw-epc.
 */
#ifndef PCIEFW_SHARED_RAM_H
#define PCIEFW_SHARED_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pciefw.h"
#include "pciefw.pb-c.h"

struct pf_shared_region {
	uint64_t guest_address;
	uint64_t size;
	uint8_t *base;          /* the mapping */
};

struct pf_shared_ram {
	struct pf_shared_region r[PCIEFW_MAX_MEM_REGIONS];
	unsigned n;
	/* pf_shared_ram_prefault(): where it goes on, what it did. */
	unsigned fill_region;
	uint64_t fill_offset;
	uint64_t filled;        /* bytes whose page tables it filled */
};

/*
 * Replace the map with @mm, whose regions' fds are @fds (one each, in
 * order; all closed by this call).  A region whose fd cannot be mapped
 * safely is refused and logged: DMA there goes by messages.  Returns the
 * number of regions kept.  @mm has passed pf_msg_validate().
 */
/* Where a side's log lines go: @warn for a refusal, else the summary. */
typedef void (*pf_shared_ram_log)(void *opaque, bool warn, const char *line);

unsigned pf_shared_ram_set(struct pf_shared_ram *gm, const Pciefw__MemoryMap *mm,
			  const int *fds, const char *who, pf_shared_ram_log log,
			  void *opaque);
void pf_shared_ram_clear(struct pf_shared_ram *gm);

/*
 * Fill the page tables of the next @budget bytes of the map (at most 4 MiB
 * a call), writable, for the pages the memory file already holds, so that
 * DMA into them takes no page fault; pages the guest never touched are
 * left alone (filling them would allocate all of guest RAM).  With
 * MADV_POPULATE_WRITE (Linux 5.14), else a locked add of 0 to each page
 * (atomic: the guest may write the same bytes meanwhile).  Returns true
 * while some remains; a new map starts over.
 */
bool pf_shared_ram_prefault(struct pf_shared_ram *gm, uint64_t budget);

/* Where [addr, addr + len) is mapped, if wholly inside one region. */
uint8_t *pf_shared_ram_find(const struct pf_shared_ram *gm, uint64_t addr,
			   uint64_t len);

#endif /* PCIEFW_SHARED_RAM_H */
