/*
 * devdiff: drive two PCI functions in one guest through the same sequence
 * and report where they differ (docs/models.md 8).  A static program for
 * the test guest, run as root with both functions unbound:
 *
 *   devdiff regs LIST BDF_A BDF_B
 *       LIST's registers and procedures on A, then on B; prints what
 *       differs (DIFF), what breaks LIST's reference (REF) and the name
 *       of everything compared (CMP).
 *   devdiff wire e1000 LIST MEMBASE BDF_A BDF_B
 *       the e1000's rings: the same TX packets and RX frames through both
 *       (e1000.c); LIST's counters are compared afterwards.
 *
 * Each function starts from a reset (sysfs: for a function alone behind a
 * port, a secondary bus reset) with memory decoding and bus mastering on.
 * The output is meant for tests/integration/devdiff.py.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devdiff.h"

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("devdiff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- devices ---- */

static void sysfs_write(const char *bdf, const char *file, const char *text)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("%s: %s", path, strerror(errno));
	close(fd);
}

/* Memory decoding and bus mastering on (PCI Command bits 1 and 2). */
static void enable(struct dev *d)
{
	uint16_t cmd;

	if (pread(d->cfg_fd, &cmd, 2, 4) != 2)
		die("%s: config read: %s", d->bdf, strerror(errno));
	cmd |= 0x6;
	if (pwrite(d->cfg_fd, &cmd, 2, 4) != 2)
		die("%s: config write: %s", d->bdf, strerror(errno));
}

void dev_open(struct dev *d, const char *bdf)
{
	char path[128];
	struct stat st;
	int fd;
	void *p;

	d->bdf = bdf;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	d->cfg_fd = open(path, O_RDWR);
	if (d->cfg_fd < 0)
		die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", path, strerror(errno));
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap %s: %s", path, strerror(errno));
	close(fd);
	d->bar0 = p;
	d->bar0_len = (size_t)st.st_size;
	d->flush_off = 0;
	enable(d);
}

/* The function's own reset as the kernel does it (pci_reset_function). */
void dev_reset(struct dev *d)
{
	sysfs_write(d->bdf, "reset", "1");
	enable(d);
	flush(d);
}

uint32_t rd(struct dev *d, uint32_t off)
{
	if (off + 4 > d->bar0_len)
		die("%s: offset 0x%x outside BAR0", d->bdf, off);
	return *(volatile uint32_t *)(d->bar0 + off);
}

void wr(struct dev *d, uint32_t off, uint32_t v)
{
	if (off + 4 > d->bar0_len)
		die("%s: offset 0x%x outside BAR0", d->bdf, off);
	*(volatile uint32_t *)(d->bar0 + off) = v;
}

void flush(struct dev *d)
{
	(void)rd(d, d->flush_off);
}

bool intx(struct dev *d)
{
	uint16_t status;

	flush(d);
	if (pread(d->cfg_fd, &status, 2, 6) != 2)
		die("%s: config read: %s", d->bdf, strerror(errno));
	return status & 0x8;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

bool intx_wait(struct dev *d, bool want, int ms)
{
	struct timespec t0, t;
	bool level;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		level = intx(d);
		if (level == want)
			return level;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return level;
		sleep_ms(1);
	}
}

uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* ---- observations ---- */

void record_ref(struct rec *r, const char *name, const char *step, uint32_t v,
		uint32_t ref_mask, uint32_t ref_val)
{
	struct obs *o;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4096;
		r->o = realloc(r->o, r->cap * sizeof(*r->o));
		if (!r->o)
			die("out of memory");
	}
	o = &r->o[r->n++];
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->step, sizeof(o->step), "%s", step);
	o->v = v;
	o->ref_mask = ref_mask;
	o->ref_val = ref_val & ref_mask;
}

void record(struct rec *r, const char *name, const char *step, uint32_t v)
{
	record_ref(r, name, step, v, 0, 0);
}

/* ---- the list ---- */

const char *arg_str(const struct args *a, const char *key, const char *def)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->k[i], key))
			return a->v[i];
	return def;
}

uint32_t arg_u32(const struct args *a, const char *key, uint32_t def)
{
	const char *s = arg_str(a, key, NULL);
	char *end;
	unsigned long v;

	if (!s)
		return def;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > 0xffffffffu)
		die("%s=%s: not a 32-bit number", key, s);
	return (uint32_t)v;
}

/* Two numbers "M/W" (the driver's mask and write mask). */
static void parse_pair(const char *key, const char *s, uint32_t *m, uint32_t *w)
{
	char *end;

	*m = (uint32_t)strtoul(s, &end, 0);
	if (*end != '/')
		die("%s=%s: want MASK/WRITE", key, s);
	*w = (uint32_t)strtoul(end + 1, &end, 0);
	if (*end)
		die("%s=%s: want MASK/WRITE", key, s);
}

enum line_kind { L_REG, L_PROC, L_FLUSH };

struct line {
	enum line_kind kind;
	char *name, *cls, *comment;
	uint32_t off;
	struct args a;
};

struct list {
	struct line *l;
	int n;
};

static char *next_word(char **p)
{
	char *s = *p, *w;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return NULL;
	w = s;
	while (*s && !isspace((unsigned char)*s))
		s++;
	if (*s)
		*s++ = 0;
	*p = s;
	return w;
}

/* A number of a list line, or a one-line error naming the line. */
static uint32_t list_u32(const char *path, int lineno, const char *what, const char *s)
{
	char *end;
	unsigned long v;

	if (!s)
		die("%s:%d: %s missing", path, lineno, what);
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s || v > 0xffffffffu)
		die("%s:%d: %s '%s' is not a 32-bit number", path, lineno, what, s);
	return (uint32_t)v;
}

static struct list read_list(const char *path)
{
	struct list L = { 0 };
	char buf[512];
	FILE *f = fopen(path, "r");
	int lineno = 0;

	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fgets(buf, sizeof(buf), f)) {
		char *p = buf, *hash = strchr(buf, '#'), *kind, *w;
		struct line ln = { 0 };

		lineno++;
		if (hash) {
			*hash++ = 0;
			while (isspace((unsigned char)*hash))
				hash++;
			hash[strcspn(hash, "\n")] = 0;
			ln.comment = strdup(hash);
		}
		kind = next_word(&p);
		if (!kind)
			continue;
		if (!strcmp(kind, "flush")) {
			ln.kind = L_FLUSH;
			ln.off = list_u32(path, lineno, "offset", next_word(&p));
		} else if (!strcmp(kind, "reg")) {
			char *name = next_word(&p), *off = next_word(&p), *cls = next_word(&p);

			if (!cls)
				die("%s:%d: reg NAME OFFSET CLASS [KEY=VALUE]...", path, lineno);
			ln.kind = L_REG;
			ln.name = strdup(name);
			ln.off = list_u32(path, lineno, "offset", off);
			ln.cls = strdup(cls);
		} else if (!strcmp(kind, "proc")) {
			ln.kind = L_PROC;
			ln.name = next_word(&p);
			if (!ln.name)
				die("%s:%d: proc NAME [KEY=VALUE]...", path, lineno);
			ln.name = strdup(ln.name);
		} else {
			die("%s:%d: unknown line kind '%s'", path, lineno, kind);
		}
		while ((w = next_word(&p))) {
			char *eq = strchr(w, '=');

			if (ln.a.n == 16)
				die("%s:%d: more than 16 KEY=VALUE", path, lineno);
			if (!eq)
				die("%s:%d: '%s' is not KEY=VALUE", path, lineno, w);
			*eq = 0;
			ln.a.k[ln.a.n] = strdup(w);
			ln.a.v[ln.a.n++] = strdup(eq + 1);
		}
		L.l = realloc(L.l, (size_t)(L.n + 1) * sizeof(*L.l));
		if (!L.l)
			die("out of memory");
		L.l[L.n++] = ln;
	}
	fclose(f);
	return L;
}

/* ---- register classes (docs/models.md 8.2) ---- */

static void step_w(char *buf, size_t len, const char *what, uint32_t w)
{
	snprintf(buf, len, "%s0x%08x", what, w);
}

/* Write @w, read back; the reference (if @mask) is w & mask. */
static void write_read(struct dev *d, struct rec *r, const char *name, uint32_t off,
		       uint32_t w, bool has_mask, uint32_t mask)
{
	char step[40];

	wr(d, off, w);
	step_w(step, sizeof(step), "w=", w);
	record_ref(r, name, step, rd(d, off), has_mask ? 0xffffffffu : 0, w & mask);
}

/*
 * rw: zeros, ones, walking ones, 0x5a/0xa5 patterns (each masked by
 * write=), the driver's pattern test (drv=MASK/WRITE, e1000_ethtool.c
 * reg_pattern_test) and set-and-check (drvset=MASK/WRITE); then the
 * first value read is written back.
 */
static void class_rw(struct dev *d, struct rec *r, const char *name, uint32_t off,
		     const struct args *a, bool walk)
{
	static const uint32_t drv_patterns[] = { 0x5a5a5a5a, 0xa5a5a5a5, 0, 0xffffffff };
	uint32_t wmask = arg_u32(a, "write", 0xffffffffu);
	bool has_mask = arg_str(a, "mask", NULL) != NULL;
	uint32_t mask = arg_u32(a, "mask", 0xffffffffu);
	uint32_t v0 = rd(d, off), m, w;
	char step[40];

	record(r, name, "initial", v0);
	write_read(d, r, name, off, 0, has_mask, mask);
	write_read(d, r, name, off, wmask, has_mask, mask);
	for (int b = 0; walk && b < 32; b++)
		if (wmask >> b & 1)
			write_read(d, r, name, off, 1u << b, has_mask, mask);
	write_read(d, r, name, off, 0x5a5a5a5a & wmask, has_mask, mask);
	write_read(d, r, name, off, 0xa5a5a5a5 & wmask, has_mask, mask);
	/* drv= and drvset= may repeat: each runs in the order given. */
	for (int k = 0; k < a->n; k++) {
		if (!strcmp(a->k[k], "drv")) {
			parse_pair(a->k[k], a->v[k], &m, &w);
			for (size_t i = 0; i < 4; i++) {
				wr(d, off, w & drv_patterns[i]);
				step_w(step, sizeof(step), "driver-pattern w=", w & drv_patterns[i]);
				record_ref(r, name, step, rd(d, off), 0xffffffffu,
					   w & drv_patterns[i] & m);
			}
		} else if (!strcmp(a->k[k], "drvset")) {
			parse_pair(a->k[k], a->v[k], &m, &w);
			wr(d, off, w & m);
			step_w(step, sizeof(step), "driver-set w=", w & m);
			record_ref(r, name, step, rd(d, off), m, w & m);
		}
	}
	if (strcmp(arg_str(a, "restore", "yes"), "no"))
		wr(d, off, v0);
}

/*
 * ro: writes must not change it.  toggle=T is the driver's STATUS test
 * (write T, the bits of T read as before); mask=M: bits that must stay.
 */
static void class_ro(struct dev *d, struct rec *r, const char *name, uint32_t off,
		     const struct args *a)
{
	uint32_t v0 = rd(d, off), m = arg_u32(a, "mask", 0);
	uint32_t toggle = arg_u32(a, "toggle", 0);
	const uint32_t writes[] = { ~v0, 0xffffffffu, 0 };
	const char *steps[] = { "w=~initial", "w=0xffffffff", "w=0x00000000" };
	char step[40];

	record(r, name, "initial", v0);
	for (size_t i = 0; i < 3; i++) {
		wr(d, off, writes[i]);
		record_ref(r, name, steps[i], rd(d, off), m, v0);
	}
	if (toggle) {
		wr(d, off, toggle);
		step_w(step, sizeof(step), "driver-toggle w=", toggle);
		record_ref(r, name, step, rd(d, off), toggle, v0);
	}
}

/* rc: read twice; the second read finds it cleared. */
static void class_rc(struct dev *d, struct rec *r, const char *name, uint32_t off)
{
	record(r, name, "read", rd(d, off));
	record_ref(r, name, "read again", rd(d, off), 0xffffffffu, 0);
}

/*
 * rc64: a 64-bit counter, low half at @off: reading the high half clears
 * both (SDM 13.7), reading the low half alone clears nothing.
 */
static void class_rc64(struct dev *d, struct rec *r, const char *name, uint32_t off)
{
	uint32_t lo = rd(d, off);

	record(r, name, "low", lo);
	record_ref(r, name, "low again", rd(d, off), 0xffffffffu, lo);
	record(r, name, "high", rd(d, off + 4));
	record_ref(r, name, "low after high", rd(d, off), 0xffffffffu, 0);
	record_ref(r, name, "high after high", rd(d, off + 4), 0xffffffffu, 0);
}

/* wo: only reads are observed (mask=M: those bits read 0). */
static void class_wo(struct dev *d, struct rec *r, const char *name, uint32_t off,
		     const struct args *a)
{
	record_ref(r, name, "read", rd(d, off), arg_u32(a, "mask", 0), 0);
}

/* A reg line: one register or an array (n=COUNT stride=BYTES). */
static void run_reg(struct dev *d, struct rec *r, const struct line *ln, bool counters_only)
{
	uint32_t n = arg_u32(&ln->a, "n", 1), stride = arg_u32(&ln->a, "stride", 4);
	const char *walk = arg_str(&ln->a, "walk", n > 1 ? "ends" : "all");
	bool counter = !strcmp(ln->cls, "rc") || !strcmp(ln->cls, "rc64");

	if (counters_only && !counter)
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t off = ln->off + i * stride;
		char name[32];

		if (n > 1)
			snprintf(name, sizeof(name), "%s[%u]", ln->name, i);
		else
			snprintf(name, sizeof(name), "%s", ln->name);
		if (!strcmp(ln->cls, "rw"))
			class_rw(d, r, name, off, &ln->a,
				 !strcmp(walk, "all") ||
				 (!strcmp(walk, "ends") && (i == 0 || i + 1 == n)));
		else if (!strcmp(ln->cls, "ro"))
			class_ro(d, r, name, off, &ln->a);
		else if (!strcmp(ln->cls, "rc"))
			class_rc(d, r, name, off);
		else if (!strcmp(ln->cls, "rc64"))
			class_rc64(d, r, name, off);
		else if (!strcmp(ln->cls, "wo"))
			class_wo(d, r, name, off, &ln->a);
		else if (strcmp(ln->cls, "skip"))
			die("register %s: unknown class '%s'", ln->name, ln->cls);
	}
}

/* ---- interrupts through the cause registers (proc irq) ---- */

/*
 * What a driver's handler collects: while INTx is asserted, read ICR
 * (the Linux e1000 self-test's e1000_test_intr); wait up to @ms for it.
 */
static uint32_t handled_causes(struct dev *d, uint32_t icr, int ms)
{
	uint32_t seen = 0;

	if (!intx_wait(d, true, ms))
		return 0;
	for (int i = 0; i < 100 && intx(d); i++)
		seen |= rd(d, icr);
	return seen;
}

/*
 * irq icr= ics= ims= imc= bits=MASK: each cause bit set through ICS,
 * masked and unmasked, seen (or not) as INTx; ICR read-to-clear and
 * write-1-to-clear.  Then the Linux e1000 self-test's interrupt test
 * (e1000_ethtool.c e1000_intr_test, unshared line) for bits 0-9, whose
 * expectations are the reference.
 */
static void proc_irq(struct dev *d, struct rec *r, const struct args *a)
{
	uint32_t icr = arg_u32(a, "icr", 0xc0), ics = arg_u32(a, "ics", 0xc8);
	uint32_t ims = arg_u32(a, "ims", 0xd0), imc = arg_u32(a, "imc", 0xd8);
	uint32_t bits = arg_u32(a, "bits", 0xffffffffu);
	char name[32];

	wr(d, imc, 0xffffffffu);
	rd(d, icr);
	for (int b = 0; b < 32; b++) {
		uint32_t m = 1u << b;

		if (!(bits & m))
			continue;
		snprintf(name, sizeof(name), "ICR[%d]", b);
		wr(d, ics, m);
		record(r, name, "ICS, masked: INTx", intx_wait(d, true, 20));
		record(r, name, "ICS, masked: ICS read", rd(d, ics));
		wr(d, ims, m);
		record(r, name, "IMS read", rd(d, ims));
		record(r, name, "unmasked: INTx", intx_wait(d, true, 500));
		record(r, name, "ICR read", rd(d, icr));
		record(r, name, "after ICR read: INTx", intx_wait(d, false, 500));
		wr(d, ics, m);
		wr(d, icr, m);
		record(r, name, "ICS, ICR write 1: ICR read", rd(d, icr));
		record(r, name, "after ICR write 1: INTx", intx_wait(d, false, 500));
		wr(d, imc, m);
		record(r, name, "IMC: IMS read", rd(d, ims));
	}
	wr(d, imc, 0xffffffffu);
	rd(d, icr);
	intx_wait(d, false, 500);
	for (int i = 0; i < 10; i++) {
		uint32_t m = 1u << i;

		snprintf(name, sizeof(name), "INTR-TEST[%d]", i);
		wr(d, imc, m);
		wr(d, ics, m);
		record_ref(r, name, "masked: causes handled", handled_causes(d, icr, 10) & m,
			   0xffffffffu, 0);
		wr(d, ims, m);
		wr(d, ics, m);
		record_ref(r, name, "unmasked: causes handled",
			   handled_causes(d, icr, 500) & m, 0xffffffffu, m);
		wr(d, imc, ~m & 0x7fff);
		wr(d, ics, ~m & 0x7fff);
		record_ref(r, name, "others masked: causes handled",
			   handled_causes(d, icr, 10), 0xffffffffu, 0);
	}
	wr(d, imc, 0xffffffffu);
	rd(d, icr);
	intx_wait(d, false, 500);
}

static const struct proc core_procs[] = {
	{ "irq", proc_irq },
	{ NULL, NULL },
};

static const struct proc *find_proc(const char *name)
{
	for (const struct proc *p = core_procs; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	for (const struct proc *p = e1000_procs; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	die("unknown procedure '%s'", name);
}

static void run_list(struct dev *d, const struct list *L, struct rec *r, bool counters_only)
{
	for (int i = 0; i < L->n; i++) {
		const struct line *ln = &L->l[i];

		if (ln->kind == L_FLUSH)
			d->flush_off = ln->off;
		else if (ln->kind == L_REG)
			run_reg(d, r, ln, counters_only);
		else if (!counters_only)
			find_proc(ln->name)->run(d, r, &ln->a);
	}
}

/* ---- the comparison ---- */

static void print_skips(const struct list *L)
{
	for (int i = 0; i < L->n; i++)
		if (L->l[i].kind == L_REG && !strcmp(L->l[i].cls, "skip"))
			printf("SKIP %s 0x%04x %s\n", L->l[i].name, L->l[i].off,
			       L->l[i].comment ? L->l[i].comment : "");
}

static void check_refs(const char *side, const struct rec *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct obs *o = &r->o[i];

		if (o->ref_mask && (o->v & o->ref_mask) != o->ref_val)
			printf("REF %s %s | %s | want 0x%08x mask 0x%08x | got 0x%08x\n",
			       side, o->name, o->step, o->ref_val, o->ref_mask, o->v);
	}
}

/*
 * Print what both sides observed differently (with @all, what they observed
 * alike too, as SAME), the reference failures of each, and the name of
 * everything compared; returns the differences.
 */
int compare(const char *what, const struct dev *a, const struct dev *b,
	    const struct rec *ra, const struct rec *rb, bool all)
{
	int diffs = 0, names = 0;
	const char *last = "";

	printf("PAIR %s A=%s B=%s\n", what, a->bdf, b->bdf);
	if (ra->n != rb->n)
		die("the two runs recorded %zu and %zu observations", ra->n, rb->n);
	for (size_t i = 0; i < ra->n; i++) {
		const struct obs *x = &ra->o[i], *y = &rb->o[i];

		if (strcmp(x->name, y->name) || strcmp(x->step, y->step))
			die("the runs diverged at %zu: %s/%s vs %s/%s", i, x->name,
			    x->step, y->name, y->step);
		if (strcmp(x->name, last)) {
			size_t n = 1;

			while (i + n < ra->n && !strcmp(ra->o[i + n].name, x->name))
				n++;
			printf("CMP %s %zu\n", x->name, n);
			last = x->name;
			names++;
		}
		if (x->v != y->v) {
			printf("DIFF %s | %s | 0x%08x | 0x%08x\n", x->name, x->step, x->v, y->v);
			diffs++;
		} else if (all) {
			printf("SAME %s | %s | 0x%08x | 0x%08x\n", x->name, x->step, x->v, y->v);
		}
	}
	check_refs("A", ra);
	check_refs("B", rb);
	printf("DONE %s compared=%d observations=%zu differences=%d\n", what, names,
	       ra->n, diffs);
	return diffs;
}

int devdiff_counters(struct dev *d, const char *list, struct rec *r)
{
	struct list L = read_list(list);

	run_list(d, &L, r, true);
	return 0;
}

static int regs(int argc, char **argv)
{
	struct dev a, b;
	struct rec ra = { 0 }, rb = { 0 };
	struct list L;

	if (argc != 5)
		die("usage: devdiff regs LIST BDF_A BDF_B");
	L = read_list(argv[2]);
	dev_open(&a, argv[3]);
	dev_open(&b, argv[4]);
	for (int i = 0; i < L.n; i++)
		if (L.l[i].kind == L_FLUSH)
			a.flush_off = b.flush_off = L.l[i].off;
	dev_reset(&a);
	run_list(&a, &L, &ra, false);
	dev_reset(&b);
	run_list(&b, &L, &rb, false);
	print_skips(&L);
	compare("regs", &a, &b, &ra, &rb, getenv("DEVDIFF_ALL") != NULL);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "regs"))
		return regs(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "wire") && !strcmp(argv[2], "e1000"))
		return e1000_wire(argc, argv);
	fprintf(stderr, "usage: devdiff regs LIST BDF_A BDF_B\n"
		"       devdiff wire e1000 LIST MEMBASE BDF_A BDF_B\n");
	return 2;
}
