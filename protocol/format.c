/* One-line message formatting; see format.h. */
#include "format.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *p;
	size_t left;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!o->left)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p, o->left, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= o->left)
		n = (int)o->left - 1;
	o->p += n;
	o->left -= (size_t)n;
}

/* Data as hex bytes in bus order; long payloads abbreviated. */
static void put_bytes(struct out *o, const ProtobufCBinaryData *d)
{
	size_t show = d->len < 16 ? d->len : 16;

	put(o, " data=");
	for (size_t i = 0; i < show; i++)
		put(o, "%02x", d->data[i]);
	if (d->len > show)
		put(o, "... (%zu bytes)", d->len);
	else if (!d->len)
		put(o, "-");
}

/*
 * Register data: a 1, 2, 4 or 8-byte access is shown as the value it
 * carries (little-endian on the wire, spec 1.4), zero-padded to its width:
 * "data=0x00000003"; other lengths as bytes.
 */
static void put_data(struct out *o, const ProtobufCBinaryData *d)
{
	unsigned long long v = 0;

	if (d->len != 1 && d->len != 2 && d->len != 4 && d->len != 8) {
		put_bytes(o, d);
		return;
	}
	for (size_t i = d->len; i-- > 0;)
		v = v << 8 | d->data[i];
	put(o, " data=0x%0*llx", (int)d->len * 2, v);
}

static void put_text(struct out *o, const char *name, const char *s)
{
	put(o, " %s=\"", name);
	for (; s && *s; s++)
		put(o, "%c", (*s >= 0x20 && *s < 0x7f && *s != '"') ? *s : '?');
	put(o, "\"");
}

static void put_description(struct out *o, const Pciefw__DeviceDescription *d)
{
	static const char *const kinds[] = { "mem32", "mem64", "io" };

	put(o, " id=%04x:%04x subsys=%04x:%04x class=%06x rev=%u", d->vendor_id,
	    d->device_id, d->subsystem_vendor_id, d->subsystem_id, d->class_code,
	    d->revision);
	for (size_t i = 0; i < d->n_bars; i++) {
		const Pciefw__Bar *b = d->bars[i];

		put(o, " bar%u=%s%s/0x%llx", b->index,
		    (unsigned)b->kind < 3 ? kinds[b->kind] : "?",
		    b->prefetchable ? "-pref" : "", (unsigned long long)b->size);
	}
	put(o, " msi=%u msix=%u", d->msi_vectors, d->msix_vectors);
	if (d->msix_vectors)
		put(o, " (table bar%u+0x%llx pba bar%u+0x%llx)", d->msix_table_bar,
		    (unsigned long long)d->msix_table_offset, d->msix_pba_bar,
		    (unsigned long long)d->msix_pba_offset);
	put(o, " intx=%u", d->intx_pin);
}

/* The first entries shown; the rest are counted. */
#define FORMAT_MSIX_ENTRIES 8

static void put_interrupt_config(struct out *o, const Pciefw__InterruptConfig *c)
{
	put(o, " msi=%s", c->msi_enabled ? "on" : "off");
	if (c->msi_enabled)
		put(o, "/%u", c->msi_vectors);
	put(o, " address=0x%llx data=0x%x mask=0x%x msix=%s%s entries=%zu",
	    (unsigned long long)c->msi_address, c->msi_data, c->msi_mask,
	    c->msix_enabled ? "on" : "off", c->msix_masked ? "/masked" : "",
	    c->n_msix_entries);
	for (size_t i = 0; i < c->n_msix_entries && i < FORMAT_MSIX_ENTRIES; i++) {
		const Pciefw__MsixEntry *e = c->msix_entries[i];

		put(o, " [%u 0x%llx 0x%x%s]", e->vector,
		    (unsigned long long)e->address, e->data,
		    e->masked ? " masked" : "");
	}
	if (c->n_msix_entries > FORMAT_MSIX_ENTRIES)
		put(o, " ...");
}

char *pf_msg_format(const PfMessage *m, char *buf, size_t len)
{
	struct out o = { buf, len };

	if (len)
		buf[0] = '\0';
	put(&o, "%s", pf_msg_kind_name(m->body_case));
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_HELLO:
		put(&o, " magic=0x%08x version=%u.%u features=0x%llx max_payload=%u",
		    m->hello->magic, m->hello->version_major, m->hello->version_minor,
		    (unsigned long long)m->hello->features, m->hello->max_payload);
		put_text(&o, "name", m->hello->peer_name);
		break;
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
		put(&o, " tag=%u offset=0x%x size=%u", m->config_read->tag,
		    m->config_read->offset, m->config_read->size);
		break;
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
		put(&o, " tag=%u offset=0x%x", m->config_write->tag,
		    m->config_write->offset);
		put_data(&o, &m->config_write->data);
		break;
	case PCIEFW__MESSAGE__BODY_MEM_READ:
		put(&o, " tag=%u bar=%u offset=0x%llx size=%u", m->mem_read->tag,
		    m->mem_read->bar, (unsigned long long)m->mem_read->offset,
		    m->mem_read->size);
		break;
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
		put(&o, " bar=%u offset=0x%llx", m->mem_write->bar,
		    (unsigned long long)m->mem_write->offset);
		put_data(&o, &m->mem_write->data);
		break;
	case PCIEFW__MESSAGE__BODY_IO_READ:
		put(&o, " tag=%u bar=%u offset=0x%llx size=%u", m->io_read->tag,
		    m->io_read->bar, (unsigned long long)m->io_read->offset,
		    m->io_read->size);
		break;
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
		put(&o, " tag=%u bar=%u offset=0x%llx", m->io_write->tag,
		    m->io_write->bar, (unsigned long long)m->io_write->offset);
		put_data(&o, &m->io_write->data);
		break;
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		put(&o, " tag=%u status=%s", m->completion->tag,
		    pf_status_name(m->completion->status));
		if (m->completion->data.len)
			put_data(&o, &m->completion->data);
		break;
	case PCIEFW__MESSAGE__BODY_DMA_READ:
		put(&o, " tag=%u address=0x%llx size=%u", m->dma_read->tag,
		    (unsigned long long)m->dma_read->address, m->dma_read->size);
		break;
	case PCIEFW__MESSAGE__BODY_DMA_WRITE:
		put(&o, " address=0x%llx", (unsigned long long)m->dma_write->address);
		put_bytes(&o, &m->dma_write->data);
		break;
	case PCIEFW__MESSAGE__BODY_INTX:
		put(&o, " %s", m->intx->asserted ? "assert" : "deassert");
		break;
	case PCIEFW__MESSAGE__BODY_MSI:
		put(&o, " vector=%u", m->msi->vector);
		break;
	case PCIEFW__MESSAGE__BODY_MSIX:
		put(&o, " vector=%u", m->msix->vector);
		break;
	case PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION:
		put_description(&o, m->device_description);
		break;
	case PCIEFW__MESSAGE__BODY_RESET:
		put(&o, " tag=%u kind=%s", m->reset->tag,
		    m->reset->kind == PCIEFW__RESET_KIND__RESET_FUNCTION ? "function" :
		    m->reset->kind == PCIEFW__RESET_KIND__RESET_SYSTEM ? "system" : "?");
		break;
	case PCIEFW__MESSAGE__BODY_GOODBYE:
		put(&o, " reason=%d", m->goodbye->reason);
		put_text(&o, "text", m->goodbye->text);
		break;
	case PCIEFW__MESSAGE__BODY_ERROR:
		put(&o, " code=%d", m->error->code);
		put_text(&o, "text", m->error->text);
		break;
	case PCIEFW__MESSAGE__BODY_MEMORY_MAP:
		put(&o, " regions=%zu", m->memory_map->n_regions);
		for (size_t i = 0; i < m->memory_map->n_regions; i++) {
			const Pciefw__MemoryRegion *r = m->memory_map->regions[i];

			put(&o, " [0x%llx+0x%llx@0x%llx]",
			    (unsigned long long)r->guest_address,
			    (unsigned long long)r->size,
			    (unsigned long long)r->fd_offset);
		}
		break;
	case PCIEFW__MESSAGE__BODY_BUS_MASTER:
		put(&o, " %s", m->bus_master->enabled ? "enabled" : "disabled");
		break;
	case PCIEFW__MESSAGE__BODY_RING_SETUP:
		put(&o, " region=%llu",
		    (unsigned long long)m->ring_setup->region_size);
		break;
	case PCIEFW__MESSAGE__BODY_RING_READY:
		put(&o, " %s", m->ring_ready->accepted ? "accepted" : "refused");
		put_text(&o, "reason", m->ring_ready->reason);
		break;
	case PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG:
		put_interrupt_config(&o, m->interrupt_config);
		break;
	default:
		break;
	}
	return buf;
}

int pf_msg_target(const PfMessage *m, int *bar, unsigned long long *addr,
		  unsigned long long *size)
{
	*bar = -1;
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_MEM_READ:
		*bar = (int)m->mem_read->bar;
		*addr = m->mem_read->offset;
		*size = m->mem_read->size;
		return 1;
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
		*bar = (int)m->mem_write->bar;
		*addr = m->mem_write->offset;
		*size = m->mem_write->data.len;
		return 1;
	case PCIEFW__MESSAGE__BODY_IO_READ:
		*bar = (int)m->io_read->bar;
		*addr = m->io_read->offset;
		*size = m->io_read->size;
		return 1;
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
		*bar = (int)m->io_write->bar;
		*addr = m->io_write->offset;
		*size = m->io_write->data.len;
		return 1;
	case PCIEFW__MESSAGE__BODY_DMA_READ:
		*addr = m->dma_read->address;
		*size = m->dma_read->size;
		return 1;
	case PCIEFW__MESSAGE__BODY_DMA_WRITE:
		*addr = m->dma_write->address;
		*size = m->dma_write->data.len;
		return 1;
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
		*addr = m->config_read->offset;
		*size = m->config_read->size;
		return 1;
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
		*addr = m->config_write->offset;
		*size = m->config_write->data.len;
		return 1;
	default:
		return 0;
	}
}
