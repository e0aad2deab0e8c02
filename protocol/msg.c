/* Message builders; see msg.h.  Field meanings are in docs/protocol.md. */
#include "msg.h"

#include "codec.h"
#include "pciefw.h"

#define PUT(o, field_case, member, value)                      \
	do {                                                   \
		PfMessage m_ = PCIEFW__MESSAGE__INIT;          \
		m_.body_case = PCIEFW__MESSAGE__BODY_##field_case; \
		m_.member = (value);                           \
		return pf_codec_encode(&m_, (o));              \
	} while (0)

static ProtobufCBinaryData bytes(const void *data, uint32_t size)
{
	ProtobufCBinaryData b = { .len = size, .data = (uint8_t *)data };

	return b;
}

int pf_put_config_read(struct pf_buf *o, uint32_t tag, uint32_t off, uint32_t size)
{
	Pciefw__ConfigRead r = PCIEFW__CONFIG_READ__INIT;

	r.tag = tag;
	r.offset = off;
	r.size = size;
	PUT(o, CONFIG_READ, config_read, &r);
}

int pf_put_config_write(struct pf_buf *o, uint32_t tag, uint32_t off,
			const void *data, uint32_t size)
{
	Pciefw__ConfigWrite w = PCIEFW__CONFIG_WRITE__INIT;

	w.tag = tag;
	w.offset = off;
	w.data = bytes(data, size);
	PUT(o, CONFIG_WRITE, config_write, &w);
}

int pf_put_mem_read(struct pf_buf *o, uint32_t tag, uint32_t bar,
		    uint64_t off, uint32_t size)
{
	Pciefw__MemRead r = PCIEFW__MEM_READ__INIT;

	r.tag = tag;
	r.bar = bar;
	r.offset = off;
	r.size = size;
	PUT(o, MEM_READ, mem_read, &r);
}

int pf_put_mem_write(struct pf_buf *o, uint32_t bar, uint64_t off,
		     const void *data, uint32_t size)
{
	Pciefw__MemWrite w = PCIEFW__MEM_WRITE__INIT;

	w.bar = bar;
	w.offset = off;
	w.data = bytes(data, size);
	PUT(o, MEM_WRITE, mem_write, &w);
}

int pf_put_io_read(struct pf_buf *o, uint32_t tag, uint32_t bar,
		   uint64_t off, uint32_t size)
{
	Pciefw__IoRead r = PCIEFW__IO_READ__INIT;

	r.tag = tag;
	r.bar = bar;
	r.offset = off;
	r.size = size;
	PUT(o, IO_READ, io_read, &r);
}

int pf_put_io_write(struct pf_buf *o, uint32_t tag, uint32_t bar,
		    uint64_t off, const void *data, uint32_t size)
{
	Pciefw__IoWrite w = PCIEFW__IO_WRITE__INIT;

	w.tag = tag;
	w.bar = bar;
	w.offset = off;
	w.data = bytes(data, size);
	PUT(o, IO_WRITE, io_write, &w);
}

int pf_put_reset(struct pf_buf *o, uint32_t tag, Pciefw__ResetKind kind)
{
	Pciefw__Reset r = PCIEFW__RESET__INIT;

	r.tag = tag;
	r.kind = kind;
	PUT(o, RESET, reset, &r);
}

int pf_put_memory_map(struct pf_buf *o, const struct pf_mem_region *r,
		      size_t n)
{
	Pciefw__MemoryMap mm = PCIEFW__MEMORY_MAP__INIT;
	Pciefw__MemoryRegion regs[PCIEFW_MAX_MEM_REGIONS];
	Pciefw__MemoryRegion *ptrs[PCIEFW_MAX_MEM_REGIONS];

	if (n > PCIEFW_MAX_MEM_REGIONS)
		return PF_ERR_LIMIT;
	for (size_t i = 0; i < n; i++) {
		pciefw__memory_region__init(&regs[i]);
		regs[i].guest_address = r[i].guest_address;
		regs[i].size = r[i].size;
		regs[i].fd_offset = r[i].fd_offset;
		ptrs[i] = &regs[i];
	}
	mm.n_regions = n;
	mm.regions = ptrs;
	PUT(o, MEMORY_MAP, memory_map, &mm);
}

int pf_put_bus_master(struct pf_buf *o, bool enabled)
{
	Pciefw__BusMaster b = PCIEFW__BUS_MASTER__INIT;

	b.enabled = enabled;
	PUT(o, BUS_MASTER, bus_master, &b);
}

int pf_put_ring_setup(struct pf_buf *o, uint64_t region_size)
{
	Pciefw__RingSetup r = PCIEFW__RING_SETUP__INIT;

	r.region_size = region_size;
	PUT(o, RING_SETUP, ring_setup, &r);
}

int pf_put_ring_ready(struct pf_buf *o, bool accepted, const char *reason)
{
	Pciefw__RingReady r = PCIEFW__RING_READY__INIT;

	r.accepted = accepted;
	r.reason = (char *)(reason ? reason : "");
	PUT(o, RING_READY, ring_ready, &r);
}

int pf_put_interrupt_config(struct pf_buf *o, const struct pf_interrupt_config *c,
			    const struct pf_msix_entry *e, size_t n)
{
	Pciefw__InterruptConfig ic = PCIEFW__INTERRUPT_CONFIG__INIT;
	Pciefw__MsixEntry ents[PCIEFW_MAX_MSIX_ENTRIES];
	Pciefw__MsixEntry *ptrs[PCIEFW_MAX_MSIX_ENTRIES];

	if (n > PCIEFW_MAX_MSIX_ENTRIES)
		return PF_ERR_LIMIT;
	ic.msi_enabled = c->msi_enabled;
	ic.msi_vectors = c->msi_vectors;
	ic.msi_address = c->msi_address;
	ic.msi_data = c->msi_data;
	ic.msi_mask = c->msi_mask;
	ic.msix_enabled = c->msix_enabled;
	ic.msix_masked = c->msix_masked;
	for (size_t i = 0; i < n; i++) {
		pciefw__msix_entry__init(&ents[i]);
		ents[i].vector = e[i].vector;
		ents[i].address = e[i].address;
		ents[i].data = e[i].data;
		ents[i].masked = e[i].masked;
		ptrs[i] = &ents[i];
	}
	ic.n_msix_entries = n;
	ic.msix_entries = ptrs;
	PUT(o, INTERRUPT_CONFIG, interrupt_config, &ic);
}

/*
 * The largest encodings: the Message's key and length (2 + 2 bytes) and
 * the seven scalar fields (31 bytes), then per entry its key and length
 * (2) and its four fields (3 + 11 + 6 + 2).
 */
#define IRQCFG_FIXED_MAX  35u
#define IRQCFG_ENTRY_MAX  24u

uint32_t pf_interrupt_config_max_entries(uint32_t max_payload)
{
	size_t room = PCIEFW_MAX_FRAME(max_payload) - IRQCFG_FIXED_MAX;
	size_t n = room / IRQCFG_ENTRY_MAX;

	return n > PCIEFW_MAX_MSIX_ENTRIES ? PCIEFW_MAX_MSIX_ENTRIES : n ? n : 1;
}

int pf_put_completion(struct pf_buf *o, uint32_t tag, Pciefw__Status status,
		      const void *data, uint32_t size)
{
	Pciefw__Completion c = PCIEFW__COMPLETION__INIT;

	c.tag = tag;
	c.status = status;
	c.data = bytes(data, size);
	PUT(o, COMPLETION, completion, &c);
}

int pf_put_goodbye(struct pf_buf *o, Pciefw__GoodbyeReason reason,
		   const char *text)
{
	Pciefw__Goodbye g = PCIEFW__GOODBYE__INIT;

	g.reason = reason;
	g.text = (char *)(text ? text : "");
	PUT(o, GOODBYE, goodbye, &g);
}

int pf_put_error(struct pf_buf *o, Pciefw__ErrorCode code, const char *text)
{
	Pciefw__Error e = PCIEFW__ERROR__INIT;

	e.code = code;
	e.text = (char *)(text ? text : "");
	PUT(o, ERROR, error, &e);
}

int pf_put_dma_read(struct pf_buf *o, uint32_t tag, uint64_t addr, uint32_t size)
{
	Pciefw__DmaRead r = PCIEFW__DMA_READ__INIT;

	r.tag = tag;
	r.address = addr;
	r.size = size;
	PUT(o, DMA_READ, dma_read, &r);
}

int pf_put_dma_write(struct pf_buf *o, uint64_t addr, const void *data,
		     uint32_t size)
{
	Pciefw__DmaWrite w = PCIEFW__DMA_WRITE__INIT;

	w.address = addr;
	w.data = bytes(data, size);
	PUT(o, DMA_WRITE, dma_write, &w);
}

int pf_put_intx(struct pf_buf *o, bool asserted)
{
	Pciefw__Intx i = PCIEFW__INTX__INIT;

	i.asserted = asserted;
	PUT(o, INTX, intx, &i);
}

int pf_put_msi(struct pf_buf *o, uint32_t vector)
{
	Pciefw__Msi i = PCIEFW__MSI__INIT;

	i.vector = vector;
	PUT(o, MSI, msi, &i);
}

int pf_put_msix(struct pf_buf *o, uint32_t vector)
{
	Pciefw__MsiX i = PCIEFW__MSI_X__INIT;

	i.vector = vector;
	PUT(o, MSIX, msix, &i);
}

int pf_put_description(struct pf_buf *o, const Pciefw__DeviceDescription *d)
{
	PUT(o, DEVICE_DESCRIPTION, device_description,
	    (Pciefw__DeviceDescription *)d);
}

uint64_t pf_le_load(const void *p, size_t size)
{
	const uint8_t *b = p;
	uint64_t v = 0;

	for (size_t i = 0; i < size && i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

void pf_le_store(void *p, size_t size, uint64_t v)
{
	uint8_t *b = p;

	for (size_t i = 0; i < size && i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}
