/*
 * Where a DeviceDescription puts the MSI-X table and pending-bit array,
 * checked against the BARs it declares: what a host that builds the
 * function from it (QEMU's pciefw device, msix_init()) needs beyond
 * pf_msg_validate().  Pure, so that it is fuzzed outside QEMU
 * (tests/fuzz/fuzz_description.c).
 */
#ifndef PCIEFW_DESCRIPTION_H
#define PCIEFW_DESCRIPTION_H

#include <stddef.h>

#include "pciefw.pb-c.h"

/* MSI-X table entry and PBA sizes (PCI Local Bus 3.0, 6.8.2). */
#define PF_MSIX_ENTRY_SIZE 16u
#define PF_MSIX_PBA_SIZE(n) ((((n) + 63u) / 64u) * 8u)

/*
 * PF_OK when @d declares no MSI-X, or when its table and PBA lie in
 * memory BARs it declares, at offsets a 32-bit MSI-X capability can hold,
 * wholly inside those BARs and not overlapping each other.  Otherwise
 * PF_ERR_INVALID with the reason in @err.  Safe on any decoded
 * description, validated or not.
 */
int pf_desc_check_msix(const Pciefw__DeviceDescription *d, char *err,
		       size_t errlen);

#endif
