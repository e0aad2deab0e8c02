/* Human-readable one-line form of a message, for logs, traces and replay. */
#ifndef PCIEFW_FORMAT_H
#define PCIEFW_FORMAT_H

#include <stddef.h>

#include "codec.h"

/*
 * "mem_read tag=5 bar=0 offset=0x4 size=4"; returns @out.  The data of a
 * register access or its completion (1, 2, 4 or 8 bytes) is its value,
 * "data=0x00000003"; other data, and DMA writes, bytes in bus order.
 */
char *pf_msg_format(const PfMessage *m, char *out, size_t len);

/* The address a message targets and its BAR (-1 when none): BAR offset
 * for host requests, bus address for DMA, config offset for config. */
int pf_msg_target(const PfMessage *m, int *bar, unsigned long long *addr,
		  unsigned long long *size);

#endif
