/*
 * libpciefw: byte rings in shared memory and their wake-up protocol
 * (docs/protocol.md 11).
 *
 * Memory ordering, as spec 11.3 states it: a producer copies the bytes,
 * then publishes the new tail with a release store; a consumer reads the
 * tail with an acquire load before it copies the bytes out, and publishes
 * its head with a release store once they are copied.  Announcing sleep
 * and checking for work are a store then a load of different words, which
 * only a full fence orders (the Dekker pattern): both sides put one
 * between them, so a sleeper is either seen asleep or sees the bytes.
 */
#include "ring.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pciefw.h"
#include "shared_fd.h"

#define LOAD_ACQ(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FULL_FENCE()    __atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * A test build only (tests/meson.build builds an endpoint with it): a
 * consumer going to sleep pauses between its two steps, so that a race
 * between them shows in every test run rather than once in a million
 * sleeps.  Production builds compile it to nothing.
 */
#ifdef PF_RING_TEST_SLEEP_PAUSE_US
#define TEST_SLEEP_PAUSE() usleep(PF_RING_TEST_SLEEP_PAUSE_US)
#else
#define TEST_SLEEP_PAUSE() do { } while (0)
#endif

static uint32_t data_offset(enum pf_ring_dir dir, uint32_t ring_bytes)
{
	return PF_RING_HEADER_SIZE + (uint32_t)dir * ring_bytes;
}

size_t pf_ring_region_size(uint32_t ring_bytes)
{
	return PF_RING_HEADER_SIZE + 2 * (size_t)ring_bytes;
}

static bool ring_bytes_ok(uint32_t n)
{
	return n >= PF_RING_MIN_BYTES && n <= PF_RING_MAX_BYTES &&
	       !(n & (n - 1));
}

int pf_ring_region_init(void *base, size_t size, uint32_t ring_bytes)
{
	struct pf_ring_header *h = base;

	if (!ring_bytes_ok(ring_bytes) || size < pf_ring_region_size(ring_bytes))
		return PF_ERR_INVALID;
	memset(h, 0, PF_RING_HEADER_SIZE);
	h->version = PF_RING_LAYOUT_VERSION;
	h->ring_bytes = ring_bytes;
	/* A host's own consumer is asleep until it spins (spec 11.4). */
	h->ctl[PF_RING_TO_HOST].consumer_asleep = 1;
	h->ctl[PF_RING_TO_ENDPOINT].consumer_asleep = 1;
	STORE_REL(&h->magic, PF_RING_MAGIC);
	return PF_OK;
}

int pf_ring_attach(struct pf_ring *r, void *base, size_t size,
		   enum pf_ring_dir dir, bool producer, char *err, size_t errlen)
{
	struct pf_ring_header *h = base;
	uint32_t ring_bytes;

	memset(r, 0, sizeof(*r));
	if (size < PF_RING_HEADER_SIZE) {
		snprintf(err, errlen, "ring region of %zu bytes is smaller than "
			 "its %u-byte header", size, PF_RING_HEADER_SIZE);
		return PF_ERR_INVALID;
	}
	if (LOAD_ACQ(&h->magic) != PF_RING_MAGIC ||
	    h->version != PF_RING_LAYOUT_VERSION) {
		snprintf(err, errlen, "ring region has magic 0x%08x version %u "
			 "(0x%08x version %u expected)", h->magic, h->version,
			 PF_RING_MAGIC, PF_RING_LAYOUT_VERSION);
		return PF_ERR_INVALID;
	}
	/* Read once: the peer may change the header under us. */
	ring_bytes = LOAD_RELAXED(&h->ring_bytes);
	if (!ring_bytes_ok(ring_bytes)) {
		snprintf(err, errlen, "ring size %u is not a power of two in "
			 "[%u, %u]", ring_bytes, PF_RING_MIN_BYTES,
			 PF_RING_MAX_BYTES);
		return PF_ERR_INVALID;
	}
	if (size < pf_ring_region_size(ring_bytes)) {
		snprintf(err, errlen, "ring region of %zu bytes cannot hold two "
			 "rings of %u bytes", size, ring_bytes);
		return PF_ERR_INVALID;
	}
	r->ctl = &h->ctl[dir];
	/* Both sides start at 0 (spec 11.2): anything else is not a new ring. */
	if (LOAD_ACQ(&r->ctl->tail) || LOAD_ACQ(&r->ctl->head)) {
		snprintf(err, errlen, "ring %s has indices %llu/%llu at setup "
			 "(0 expected)", dir == PF_RING_TO_HOST ? "to the host" :
			 "to the endpoint",
			 (unsigned long long)LOAD_RELAXED(&r->ctl->tail),
			 (unsigned long long)LOAD_RELAXED(&r->ctl->head));
		return PF_ERR_INVALID;
	}
	r->data = (uint8_t *)base + data_offset(dir, ring_bytes);
	r->size = ring_bytes;
	r->pos = 0;
	return PF_OK;
}

/* Bytes in the ring by the peer's index, or -1 if that is impossible. */
static int64_t used_bytes(struct pf_ring *r, uint64_t tail, uint64_t head)
{
	uint64_t used = tail - head;

	if (used > r->size) {
		r->corrupt = true;
		return -1;
	}
	return (int64_t)used;
}

size_t pf_ring_writable(struct pf_ring *r)
{
	int64_t used;

	if (r->corrupt)
		return 0;
	used = used_bytes(r, r->pos, LOAD_ACQ(&r->ctl->head));
	return used < 0 ? 0 : r->size - (size_t)used;
}

size_t pf_ring_readable(struct pf_ring *r)
{
	int64_t used;

	if (r->corrupt)
		return 0;
	used = used_bytes(r, LOAD_ACQ(&r->ctl->tail), r->pos);
	return used < 0 ? 0 : (size_t)used;
}

/* Copy between a flat buffer and the ring at @pos, wrapping once. */
static void ring_copy(struct pf_ring *r, uint64_t pos, void *buf, size_t len,
		      bool into_ring)
{
	uint32_t at = (uint32_t)(pos & (r->size - 1));
	size_t first = len < r->size - at ? len : r->size - at;
	uint8_t *p = buf;

	if (into_ring) {
		memcpy(r->data + at, p, first);
		memcpy(r->data, p + first, len - first);
	} else {
		memcpy(p, r->data + at, first);
		memcpy(p + first, r->data, len - first);
	}
}

ssize_t pf_ring_write(struct pf_ring *r, const void *buf, size_t len)
{
	size_t room = pf_ring_writable(r);

	if (r->corrupt)
		return -1;
	if (len > room)
		len = room;
	if (!len)
		return 0;
	ring_copy(r, r->pos, (void *)buf, len, true);
	r->pos += len;
	STORE_REL(&r->ctl->tail, r->pos);
	return (ssize_t)len;
}

ssize_t pf_ring_read(struct pf_ring *r, void *buf, size_t len)
{
	size_t avail = pf_ring_readable(r);

	if (r->corrupt)
		return -1;
	if (len > avail)
		len = avail;
	if (!len)
		return 0;
	ring_copy(r, r->pos, buf, len, false);
	r->pos += len;
	STORE_REL(&r->ctl->head, r->pos);
	return (ssize_t)len;
}

bool pf_ring_consumer_sleep(struct pf_ring *r)
{
	STORE_REL(&r->ctl->consumer_asleep, 1);
	FULL_FENCE();
	TEST_SLEEP_PAUSE();
	if (pf_ring_readable(r) || r->corrupt) {
		STORE_REL(&r->ctl->consumer_asleep, 0);
		return false;
	}
	return true;
}

bool pf_ring_consumer_rest(struct pf_ring *r)
{
	STORE_REL(&r->ctl->consumer_asleep, 1);
	FULL_FENCE();
	return pf_ring_readable(r) || r->corrupt;
}

void pf_ring_consumer_awake(struct pf_ring *r)
{
	STORE_REL(&r->ctl->consumer_asleep, 0);
}

bool pf_ring_consumer_needs_kick(struct pf_ring *r)
{
	FULL_FENCE();
	return LOAD_RELAXED(&r->ctl->consumer_asleep) != 0;
}

bool pf_ring_producer_wait(struct pf_ring *r)
{
	STORE_REL(&r->ctl->producer_waiting, 1);
	FULL_FENCE();
	if (pf_ring_writable(r) || r->corrupt) {
		STORE_REL(&r->ctl->producer_waiting, 0);
		return false;
	}
	return true;
}

void pf_ring_producer_awake(struct pf_ring *r)
{
	STORE_REL(&r->ctl->producer_waiting, 0);
}

bool pf_ring_producer_needs_kick(struct pf_ring *r)
{
	FULL_FENCE();
	return LOAD_RELAXED(&r->ctl->producer_waiting) != 0;
}

void pf_poll_init(struct pf_poll *p, uint64_t min_ns, uint64_t max_ns)
{
	memset(p, 0, sizeof(*p));
	p->min_ns = min_ns;
	p->max_ns = max_ns;
	p->window_ns = min_ns;
}

void pf_poll_gap(struct pf_poll *p, uint64_t gap_ns)
{
	p->gaps[p->next] = gap_ns;
	p->next = (p->next + 1) % PF_POLL_GAPS;
	p->stale = true;
}

/* The gap three in four of the last ones were at most: the 12th of 16. */
static uint64_t gap_quantile(const struct pf_poll *p)
{
	uint64_t g[PF_POLL_GAPS];
	unsigned i, j;

	for (i = 0; i < PF_POLL_GAPS; i++) {
		uint64_t v = p->gaps[i];

		for (j = i; j > 0 && g[j - 1] > v; j--)
			g[j] = g[j - 1];
		g[j] = v;
	}
	return g[PF_POLL_GAPS * 3 / 4 - 1];
}

uint64_t pf_poll_window(struct pf_poll *p)
{
	uint64_t g, w;

	if (!p->stale)
		return p->window_ns;
	p->stale = false;
	g = gap_quantile(p);
	w = g + g / 4 + PF_POLL_SLACK_NS;
	if (g > p->max_ns || w < p->min_ns)
		w = p->min_ns;
	else if (w > p->max_ns)
		w = p->max_ns;
	p->window_ns = w;
	return w;
}

bool pf_poll_pause(struct pf_ring *tx, uint64_t polled_ns)
{
	bool peer_running = !tx->corrupt &&
			    LOAD_RELAXED(&tx->ctl->head) == tx->pos;
	uint64_t t0;

	if (polled_ns < PF_POLL_TIGHT_NS ||
	    (peer_running && polled_ns < PF_POLL_BUSY_NS)) {
		pf_cpu_relax();
		return true;
	}
	t0 = pf_ring_now_ns();
	sched_yield();
	return pf_ring_now_ns() - t0 < PF_POLL_CONTENDED_NS;
}

uint64_t pf_ring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *pf_ring_region_map(int fd, uint64_t size, char *err, size_t errlen)
{
	char why[160];
	const char *refused;
	void *p;

	if (size < pf_ring_region_size(PF_RING_MIN_BYTES) ||
	    size > pf_ring_region_size(PF_RING_MAX_BYTES)) {
		snprintf(err, errlen, "ring region of %llu bytes (%zu to %zu "
			 "expected)", (unsigned long long)size,
			 pf_ring_region_size(PF_RING_MIN_BYTES),
			 pf_ring_region_size(PF_RING_MAX_BYTES));
		return NULL;
	}
	refused = pf_shared_fd_refusal(fd, 0, size, why, sizeof(why));
	if (refused) {
		snprintf(err, errlen, "ring region refused: %s", refused);
		return NULL;
	}
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the ring region: %s",
			 strerror(errno));
		return NULL;
	}
	return p;
}

bool pf_doorbell_check(int fd, char *err, size_t errlen)
{
	char path[64], link[64];
	ssize_t n;
	int flags;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 || (link[n] = 0, strcmp(link, "anon_inode:[eventfd]"))) {
		snprintf(err, errlen, "a ring doorbell is not an eventfd");
		return false;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "ring doorbell: %s", strerror(errno));
		return false;
	}
	return true;
}

int pf_doorbell_ring(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, so the sleeper is woken anyway. */
	return n < 0 && errno != EAGAIN ? -1 : 0;
}

void pf_doorbell_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}
