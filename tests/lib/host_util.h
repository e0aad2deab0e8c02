/* Helpers for tests that drive a real endpoint through the host library. */
#ifndef PCIEFW_TEST_HOST_UTIL_H
#define PCIEFW_TEST_HOST_UTIL_H

#include "endpoint_proc.h"
#include "host.h"

/* Guest RAM the tests give the endpoint's DMA. */
#define GUEST_BASE  0x40000000ull
#define GUEST_SIZE  (8ull << 20)

/* Connect to @ep with default options and guest RAM; asserts success. */
struct pf_host *connect_host(const struct endpoint_proc *ep);
/* Wait until the endpoint has closed this connection; returns the error. */
int wait_closed(struct pf_host *h, int timeout_ms);

uint32_t rd32(struct pf_host *h, unsigned bar, uint64_t off);
void wr32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t v);
void wr64(struct pf_host *h, unsigned bar, uint64_t off, uint64_t v);

#endif
