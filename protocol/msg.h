/*
 * One call per message kind of spec 3: build the message and append it,
 * framed, to an output buffer.  Return PF_OK or PF_ERR_NOMEM.
 */
#ifndef PCIEFW_MSG_H
#define PCIEFW_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pciefw.pb-c.h"

/* Host (QEMU side) to endpoint. */
int pf_put_config_read(struct pf_buf *o, uint32_t tag, uint32_t off, uint32_t size);
int pf_put_config_write(struct pf_buf *o, uint32_t tag, uint32_t off,
			const void *data, uint32_t size);
int pf_put_mem_read(struct pf_buf *o, uint32_t tag, uint32_t bar,
		    uint64_t off, uint32_t size);
int pf_put_mem_write(struct pf_buf *o, uint32_t bar, uint64_t off,
		     const void *data, uint32_t size);
int pf_put_io_read(struct pf_buf *o, uint32_t tag, uint32_t bar,
		   uint64_t off, uint32_t size);
int pf_put_io_write(struct pf_buf *o, uint32_t tag, uint32_t bar,
		    uint64_t off, const void *data, uint32_t size);
int pf_put_reset(struct pf_buf *o, uint32_t tag, Pciefw__ResetKind kind);

/* Guest memory sharing (spec 10): one fd per region goes with the map. */
struct pf_mem_region {
	uint64_t guest_address;
	uint64_t size;
	uint64_t fd_offset;
};
int pf_put_memory_map(struct pf_buf *o, const struct pf_mem_region *r,
		      size_t n);
int pf_put_bus_master(struct pf_buf *o, bool enabled);
int pf_put_ring_setup(struct pf_buf *o, uint64_t region_size);
int pf_put_ring_ready(struct pf_buf *o, bool accepted, const char *reason);

/* The function's interrupt settings as the host programmed them (spec 12). */
struct pf_interrupt_config {
	bool msi_enabled;
	uint32_t msi_vectors;       /* enabled: 1, 2, 4 .. 32; 0 when off */
	uint64_t msi_address;
	uint32_t msi_data;
	uint32_t msi_mask;
	bool msix_enabled;
	bool msix_masked;           /* the function mask */
};
struct pf_msix_entry {
	uint32_t vector;
	uint64_t address;
	uint32_t data;
	bool masked;
};
/* @n entries (at most pf_interrupt_config_max_entries()); PF_ERR_LIMIT above. */
int pf_put_interrupt_config(struct pf_buf *o, const struct pf_interrupt_config *c,
			    const struct pf_msix_entry *e, size_t n);
/*
 * How many entries an InterruptConfig may carry in a session of
 * @max_payload: at most 64 (spec 12.5), and never more than keep its
 * frame within the max frame (1.3); at least 1.
 */
uint32_t pf_interrupt_config_max_entries(uint32_t max_payload);

/* Either direction. */
int pf_put_completion(struct pf_buf *o, uint32_t tag, Pciefw__Status status,
		      const void *data, uint32_t size);
int pf_put_goodbye(struct pf_buf *o, Pciefw__GoodbyeReason reason,
		   const char *text);
int pf_put_error(struct pf_buf *o, Pciefw__ErrorCode code, const char *text);

/* Endpoint to host. */
int pf_put_dma_read(struct pf_buf *o, uint32_t tag, uint64_t addr, uint32_t size);
int pf_put_dma_write(struct pf_buf *o, uint64_t addr, const void *data,
		     uint32_t size);
int pf_put_intx(struct pf_buf *o, bool asserted);
int pf_put_msi(struct pf_buf *o, uint32_t vector);
int pf_put_msix(struct pf_buf *o, uint32_t vector);
int pf_put_description(struct pf_buf *o, const Pciefw__DeviceDescription *d);

/* Little-endian data payloads (spec 1.4). */
uint64_t pf_le_load(const void *p, size_t size);
void pf_le_store(void *p, size_t size, uint64_t v);

#endif /* PCIEFW_MSG_H */
