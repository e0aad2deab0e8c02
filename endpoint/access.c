/*
 * The model access contract (device.h, struct pf_bar_decl): the one place
 * where a host's BAR access becomes calls of a model's bar_read/bar_write.
 * A model is handed only naturally aligned accesses of the sizes its BAR
 * declares, inside the BAR, and bursts only if it declared them; any other
 * well-formed access is split into, or widened to, declared accesses, as
 * QEMU's memory core does for a MemoryRegionOps' .impl sizes and as a
 * register block sees a multi-dword TLP.  Every path that reaches a model
 * (messages, deferred requests, the rings, binary register records)
 * passes through here.
 * It sits below the framework (device.c calls it, never the reverse), so
 * it logs with pf_log(), naming the model as pf_dev_log() would.
 */
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "endpoint.h"
#include "log.h"

/* Power-of-two access sizes a BAR may declare. */
static bool size_ok(unsigned n)
{
	return n == 1 || n == 2 || n == 4 || n == 8;
}

int pf_access_normalize(struct pf_bar_decl *b, unsigned index, char *err,
			size_t errlen)
{
	bool io = b->kind == PF_BAR_IO;
	unsigned max = io ? 4 : 8;

	if (b->kind == PF_BAR_NONE)
		return 0;
	if (!b->access_min)
		b->access_min = 1;
	if (!b->access_max)
		b->access_max = max;
	if (!size_ok(b->access_min) || !size_ok(b->access_max) ||
	    b->access_min > b->access_max || b->access_max > max) {
		snprintf(err, errlen, "BAR%u declares accesses of %u to %u bytes "
			 "(sizes 1, 2, 4, 8%s, smallest first)", index,
			 b->access_min, b->access_max, io ? ", at most 4 for IO" : "");
		return -1;
	}
	if (b->bursts != PF_BURST_SPLIT && b->bursts != PF_BURST_UR &&
	    b->bursts != PF_BURST_WHOLE) {
		snprintf(err, errlen, "BAR%u: unknown burst rule %d", index,
			 (int)b->bursts);
		return -1;
	}
	if (b->bursts == PF_BURST_WHOLE && io) {
		snprintf(err, errlen, "BAR%u is an IO BAR: it cannot take bursts",
			 index);
		return -1;
	}
	if (b->size < b->access_max) {
		snprintf(err, errlen, "BAR%u (%llu bytes) is smaller than its "
			 "largest access (%u bytes)", index,
			 (unsigned long long)b->size, b->access_max);
		return -1;
	}
	return 0;
}

/* Does the model take this access as it is? */
static bool as_declared(const struct pf_bar_decl *b, uint64_t off, uint32_t size)
{
	if (size > 8)
		return b->bursts == PF_BURST_WHOLE;
	return size_ok(size) && size >= b->access_min && size <= b->access_max &&
	       !(off & (size - 1));
}

/* A burst the model refuses outright (PF_BURST_UR). */
static bool refused_burst(const struct pf_bar_decl *b, uint32_t size)
{
	return size > 8 && b->bursts == PF_BURST_UR;
}

/* The largest declared access that is aligned at @p and ends by @end. */
static uint32_t piece_at(const struct pf_bar_decl *b, uint64_t p, uint64_t end)
{
	uint32_t n = b->access_max;

	while (n > b->access_min && ((p & (n - 1)) || p + n > end))
		n /= 2;
	return n;
}

/*
 * Reads narrower than the smallest declared access are widened to it (the
 * bytes asked for are taken from the wider read); wider ones are split.
 * The first piece that does not complete OK ends the read with its status.
 */
static int read_split(struct pf_dev *dev, const struct pf_bar_decl *b,
		      unsigned bar, uint64_t off, uint8_t *data, uint32_t size)
{
	uint64_t lo = off & ~(uint64_t)(b->access_min - 1);
	uint64_t hi = (off + size + b->access_min - 1) &
		      ~(uint64_t)(b->access_min - 1);

	for (uint64_t p = lo; p < hi;) {
		uint32_t n = piece_at(b, p, hi);
		uint8_t piece[8];
		uint64_t from = p > off ? p : off;
		uint64_t to = p + n < off + size ? p + n : off + size;
		int st = dev->model->ops->bar_read(dev->state, bar, p, piece, n);

		if (st == PF_CPL_DEFER) {
			/* Only a whole access can wait (device.h): refused. */
			pf_log(PF_LOG_WARN, "%s: BAR%u+0x%llx: the model "
			       "deferred a %u-byte piece of a %u-byte read; "
			       "completing it with CA", dev->model->name, bar,
			       (unsigned long long)p, n, size);
			return PF_CPL_CA;
		}
		if (st != PF_CPL_OK)
			return st;
		memcpy(data + (from - off), piece + (from - p), to - from);
		p += n;
	}
	return PF_CPL_OK;
}

int pf_access_read(struct pf_dev *dev, unsigned bar, uint64_t off,
		   uint8_t *data, uint32_t size)
{
	const struct pf_bar_decl *b = &dev->id.bars[bar];

	if (as_declared(b, off, size))
		return dev->model->ops->bar_read(dev->state, bar, off, data, size);
	if (refused_burst(b, size))
		return PF_CPL_UR;
	return read_split(dev, b, bar, off, data, size);
}

/* A write that no split into declared accesses covers: say so, once. */
static void write_refused(struct pf_dev *dev, const struct pf_bar_decl *b,
			  unsigned bar, uint64_t off, uint32_t size)
{
	enum pf_log_level level = dev->warned_access & (1u << bar) ?
				  PF_LOG_DEBUG : PF_LOG_WARN;

	dev->warned_access |= 1u << bar;
	pf_log(level, "%s: refusing a %u-byte write to BAR%u+0x%llx: the "
	       "device takes %s%u- to %u-byte accesses there%s",
	       dev->model->name, size, bar, (unsigned long long)off,
	       b->bursts == PF_BURST_UR ? "no bursts, only " : "",
	       b->access_min, b->access_max,
	       level == PF_LOG_WARN ? " (further refusals on this BAR are "
	       "logged at debug level)" : "");
}

bool pf_access_write(struct pf_dev *dev, unsigned bar, uint64_t off,
		     const uint8_t *data, uint32_t size)
{
	const struct pf_bar_decl *b = &dev->id.bars[bar];
	uint64_t end = off + size;

	if (as_declared(b, off, size)) {
		dev->model->ops->bar_write(dev->state, bar, off, data, size);
		return true;
	}
	/* Writing part of a register cannot be widened without inventing bytes. */
	if (refused_burst(b, size) || ((off | end) & (b->access_min - 1))) {
		write_refused(dev, b, bar, off, size);
		return false;
	}
	for (uint64_t p = off; p < end;) {
		uint32_t n = piece_at(b, p, end);

		dev->model->ops->bar_write(dev->state, bar, p, data + (p - off), n);
		p += n;
	}
	return true;
}
