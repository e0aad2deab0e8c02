/* MSI-X table and PBA placement in a DeviceDescription; see description.h. */
#include "description.h"

#include <stdint.h>
#include <stdio.h>

#include "pciefw.h"

static const Pciefw__Bar *find_bar(const Pciefw__DeviceDescription *d,
				   uint32_t index)
{
	for (size_t i = 0; i < d->n_bars; i++)
		if (d->bars[i]->index == index)
			return d->bars[i];
	return NULL;
}

/* [@off, @off + @len) inside @bar; the sums cannot wrap (@off < 2^32). */
static int fits(const char *what, uint64_t off, uint64_t len,
		const Pciefw__Bar *bar, char *err, size_t errlen)
{
	if (off + len <= bar->size)
		return PF_OK;
	snprintf(err, errlen, "the MSI-X %s (%llu bytes at 0x%llx) does not fit "
		 "in BAR%u (%llu bytes)", what, (unsigned long long)len,
		 (unsigned long long)off, bar->index,
		 (unsigned long long)bar->size);
	return PF_ERR_INVALID;
}

int pf_desc_check_msix(const Pciefw__DeviceDescription *d, char *err,
		       size_t errlen)
{
	const Pciefw__Bar *tbar, *pbar;
	uint64_t tlen, plen;

	if (!d->msix_vectors)
		return PF_OK;
	tbar = find_bar(d, d->msix_table_bar);
	pbar = find_bar(d, d->msix_pba_bar);
	if (!tbar || !pbar) {
		snprintf(err, errlen, "MSI-X table or PBA in an undeclared BAR");
		return PF_ERR_INVALID;
	}
	if (tbar->kind == PCIEFW__BAR_KIND__BAR_IO ||
	    pbar->kind == PCIEFW__BAR_KIND__BAR_IO) {
		snprintf(err, errlen, "the MSI-X table and PBA must be in memory "
			 "BARs, not I/O BARs");
		return PF_ERR_INVALID;
	}
	/* The capability holds them as 32-bit offsets (bits 31:3). */
	if (d->msix_table_offset > UINT32_MAX || d->msix_pba_offset > UINT32_MAX) {
		snprintf(err, errlen, "the MSI-X table or PBA offset is beyond 4 GiB");
		return PF_ERR_INVALID;
	}
	tlen = (uint64_t)d->msix_vectors * PF_MSIX_ENTRY_SIZE;
	plen = PF_MSIX_PBA_SIZE((uint64_t)d->msix_vectors);
	if (fits("table", d->msix_table_offset, tlen, tbar, err, errlen) ||
	    fits("PBA", d->msix_pba_offset, plen, pbar, err, errlen))
		return PF_ERR_INVALID;
	if (tbar == pbar && d->msix_table_offset < d->msix_pba_offset + plen &&
	    d->msix_pba_offset < d->msix_table_offset + tlen) {
		snprintf(err, errlen, "the MSI-X table and PBA overlap in BAR%u",
			 tbar->index);
		return PF_ERR_INVALID;
	}
	return PF_OK;
}
