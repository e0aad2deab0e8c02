/*
 * A sparse simulated guest memory: 4 KiB pages in an open-addressing hash
 * table, created on first write.  It answers the endpoint's DMA reads that
 * the recording cannot (a read of another address or size than recorded),
 * with what the recording and the live endpoint wrote or read there.
 */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1u << PAGE_SHIFT)

struct slot {
	uint64_t pfn;
	uint8_t *page;           /* NULL: empty slot */
};

struct rp_mem {
	struct slot *slots;
	size_t cap;              /* power of two */
	size_t used;
};

struct rp_mem *rp_mem_new(void)
{
	struct rp_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cap = 256;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	return m;
}

void rp_mem_free(struct rp_mem *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].page);
	free(m->slots);
	free(m);
}

static size_t hash(uint64_t pfn)
{
	return (size_t)(pfn * 0x9E3779B97F4A7C15ull >> 17);
}

static struct slot *find(struct rp_mem *m, uint64_t pfn)
{
	for (size_t i = hash(pfn) & (m->cap - 1); ; i = (i + 1) & (m->cap - 1))
		if (!m->slots[i].page || m->slots[i].pfn == pfn)
			return &m->slots[i];
}

static int grow(struct rp_mem *m)
{
	struct rp_mem n = { calloc(2 * m->cap, sizeof(struct slot)), 2 * m->cap, m->used };

	if (!n.slots)
		return -1;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].page)
			*find(&n, m->slots[i].pfn) = m->slots[i];
	free(m->slots);
	*m = n;
	return 0;
}

static uint8_t *page_for_write(struct rp_mem *m, uint64_t pfn)
{
	struct slot *s = find(m, pfn);

	if (s->page)
		return s->page;
	if (2 * (m->used + 1) > m->cap) {
		if (grow(m))
			return NULL;
		s = find(m, pfn);
	}
	s->page = calloc(1, PAGE_SIZE);
	if (!s->page)
		return NULL;
	s->pfn = pfn;
	m->used++;
	return s->page;
}

void rp_mem_write(struct rp_mem *m, uint64_t addr, const uint8_t *p, size_t len)
{
	while (len) {
		size_t off = addr & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - off < len ? PAGE_SIZE - off : len;
		uint8_t *page = page_for_write(m, addr >> PAGE_SHIFT);

		if (page)
			memcpy(page + off, p, n);
		addr += n;
		p += n;
		len -= n;
	}
}

void rp_mem_read(struct rp_mem *m, uint64_t addr, uint8_t *p, size_t len)
{
	while (len) {
		size_t off = addr & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - off < len ? PAGE_SIZE - off : len;
		struct slot *s = find(m, addr >> PAGE_SHIFT);

		if (s->page)
			memcpy(p, s->page + off, n);
		else
			memset(p, 0, n);
		addr += n;
		p += n;
		len -= n;
	}
}
