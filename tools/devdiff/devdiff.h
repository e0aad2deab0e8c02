/*
 * devdiff: drive two PCI functions in one guest through the same sequence
 * and report where they differ (docs/models.md 8).  Shared by the generic
 * core (devdiff.c: devices, register classes, interrupts, the comparison)
 * and the procedures of one model family (e1000.c).
 */
#ifndef DEVDIFF_H
#define DEVDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One function, found by its BDF in /sys/bus/pci/devices. */
struct dev {
	const char *bdf;
	volatile uint8_t *bar0;
	size_t bar0_len;
	int cfg_fd;
	uint32_t flush_off;      /* a register whose read has no side effect */
};

uint32_t rd(struct dev *d, uint32_t off);
void wr(struct dev *d, uint32_t off, uint32_t v);
/*
 * Read the flush register: the device has carried out every write before
 * (a read completes after them, and after what the device sent before its
 * completion: docs/protocol.md 5.1).
 */
void flush(struct dev *d);
/* The function's INTx as PCI Status bit 3 shows it (after a flush). */
bool intx(struct dev *d);
/* Poll intx() until it equals @want or @ms pass; returns the last level. */
bool intx_wait(struct dev *d, bool want, int ms);
void sleep_ms(int ms);

/*
 * Observations: a procedure run on one device records what it read, in
 * order; the same procedure on the other device records the same steps.
 * @ref_mask non-zero: the reference (SDM, the driver's self-test) says
 * the value read must satisfy (value & ref_mask) == ref_val.
 */
struct obs {
	char name[32];
	char step[40];
	uint32_t v;
	uint32_t ref_mask, ref_val;
};

struct rec {
	struct obs *o;
	size_t n, cap;
};

void record(struct rec *r, const char *name, const char *step, uint32_t v);
void record_ref(struct rec *r, const char *name, const char *step, uint32_t v,
		uint32_t ref_mask, uint32_t ref_val);

/* Key=value arguments of a list line. */
struct args {
	int n;
	char *k[16], *v[16];
};

const char *arg_str(const struct args *a, const char *key, const char *def);
uint32_t arg_u32(const struct args *a, const char *key, uint32_t def);

/* A named procedure of a list's "proc" line. */
struct proc {
	const char *name;
	void (*run)(struct dev *d, struct rec *r, const struct args *a);
};

extern const struct proc e1000_procs[];

/* ---- the e1000's rings, for "devdiff wire" (e1000.c) ---- */

int e1000_wire(int argc, char **argv);

/*
 * Compare two runs (same steps, same order): prints DIFF (and with @all
 * SAME), REF and CMP lines and returns the number of differences.
 */
int compare(const char *what, const struct dev *a, const struct dev *b,
	    const struct rec *ra, const struct rec *rb, bool all);
/* Run only the counters (classes rc, rc64) of the list at @path. */
int devdiff_counters(struct dev *d, const char *path, struct rec *r);

/* Helpers both modes use. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void dev_open(struct dev *d, const char *bdf);
void dev_reset(struct dev *d);
uint64_t fnv1a(const void *p, size_t n);

#endif
