/*
 * Guest RAM the host shared with the endpoint (docs/protocol.md 10): the
 * regions of the last MemoryMap that could be mapped safely, and lookups
 * that say whether a DMA range lies wholly inside one of them.
 */
#ifndef PCIEFW_GUEST_MEM_H
#define PCIEFW_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pciefw.h"
#include "pciefw.pb-c.h"

struct pf_guest_region {
	uint64_t guest_address;
	uint64_t size;
	uint8_t *base;          /* the mapping */
};

struct pf_guest_mem {
	struct pf_guest_region r[PCIEFW_MAX_MEM_REGIONS];
	unsigned n;
};

/*
 * Replace the map with @mm, whose regions' fds are @fds (one each, in
 * order; all closed by this call).  A region whose fd cannot be mapped
 * safely is refused and logged: DMA there goes by messages.  Returns the
 * number of regions kept.  @mm has passed pf_msg_validate().
 */
unsigned pf_guest_mem_set(struct pf_guest_mem *gm, const Pciefw__MemoryMap *mm,
			  const int *fds, const char *who);
void pf_guest_mem_clear(struct pf_guest_mem *gm);

/* Where [addr, addr + len) is mapped, if wholly inside one region. */
uint8_t *pf_guest_mem_find(const struct pf_guest_mem *gm, uint64_t addr,
			   uint64_t len);

#endif /* PCIEFW_GUEST_MEM_H */
