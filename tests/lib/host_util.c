/* See host_util.h. */
#include "host_util.h"

#include <glib.h>

#include "msg.h"

struct pf_host *connect_host(const struct endpoint_proc *ep)
{
	struct pf_host_opts o = { .name = "pciefw-test", .mem_base = GUEST_BASE,
				  .mem_size = GUEST_SIZE };
	char err[512];
	struct pf_host *h = pf_host_connect(ep->addr, &o, err, sizeof(err));

	if (!h)
		g_error("connect to %s: %s", ep->addr, err);
	return h;
}

int wait_closed(struct pf_host *h, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 50) {
		int r = pf_host_poll(h, 50);

		if (r < 0)
			return r;
	}
	return 0;
}

uint32_t rd32(struct pf_host *h, unsigned bar, uint64_t off)
{
	uint32_t v;

	int r = pf_host_read32(h, bar, off, &v);

	if (r)
		g_error("read of BAR%u+0x%llx: %d %s", bar, (unsigned long long)off,
			r, pf_host_error(h));
	return v;
}

void wr32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t v)
{
	g_assert_cmpint(pf_host_write32(h, bar, off, v), ==, 0);
}

void wr64(struct pf_host *h, unsigned bar, uint64_t off, uint64_t v)
{
	uint8_t b[8];

	pf_le_store(b, 8, v);
	g_assert_cmpint(pf_host_mem_write(h, bar, off, b, 8), ==, 0);
}
