/* The host library's shared-memory rings: host_rings.h, spec 11. */
#include "host_rings.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring.h"

/* How long a host waiting for a completion polls (spec 11.4). */
#define WAIT_POLL_MIN_NS 50000
#define WAIT_POLL_MAX_NS 200000

struct pf_host_rings {
	int sock;                   /* beside the rings: the endpoint's end */
	void *region;
	size_t region_size;
	int region_fd;
	int ep_bell;                /* the endpoint's doorbell: we kick it */
	int our_bell;               /* ours: the endpoint kicks it */
	struct pf_ring tx, rx;
	struct pf_poll poll;
	bool hung_up;               /* the socket said the endpoint is gone */
	bool stray_bytes;           /* the endpoint wrote on the socket */
};

void pf_host_rings_free(struct pf_host_rings *r)
{
	if (!r)
		return;
	if (r->region)
		munmap(r->region, r->region_size);
	if (r->region_fd >= 0)
		close(r->region_fd);
	if (r->ep_bell >= 0)
		close(r->ep_bell);
	if (r->our_bell >= 0)
		close(r->our_bell);
	free(r);
}

/* A memfd sealed against shrinking (spec 11.2), mapped and laid out. */
static int make_region(struct pf_host_rings *r, uint32_t ring_bytes,
		       char *err, size_t errlen)
{
	r->region_size = pf_ring_region_size(ring_bytes);
	r->region_fd = memfd_create("pciefw-rings", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->region_fd < 0 || ftruncate(r->region_fd, (off_t)r->region_size) ||
	    fcntl(r->region_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(err, errlen, "ring region: %s", strerror(errno));
		return -1;
	}
	r->region = mmap(NULL, r->region_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, r->region_fd, 0);
	if (r->region == MAP_FAILED) {
		r->region = NULL;
		snprintf(err, errlen, "ring region: mmap: %s", strerror(errno));
		return -1;
	}
	if (pf_ring_region_init(r->region, r->region_size, ring_bytes) != PF_OK) {
		snprintf(err, errlen, "ring size %u is not a power of two in "
			 "[%u, %u]", ring_bytes, PF_RING_MIN_BYTES,
			 PF_RING_MAX_BYTES);
		return -1;
	}
	if (pf_ring_attach(&r->tx, r->region, r->region_size,
			   PF_RING_TO_ENDPOINT, true, err, errlen) != PF_OK ||
	    pf_ring_attach(&r->rx, r->region, r->region_size, PF_RING_TO_HOST,
			   false, err, errlen) != PF_OK)
		return -1;
	return 0;
}

struct pf_host_rings *pf_host_rings_new(int sock, uint32_t ring_bytes,
					int fds[PCIEFW_RING_SETUP_FDS],
					uint64_t *region_size, char *err,
					size_t errlen)
{
	struct pf_host_rings *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->sock = sock;
	r->region_fd = -1;
	r->ep_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->our_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->ep_bell < 0 || r->our_bell < 0) {
		snprintf(err, errlen, "ring doorbells: %s", strerror(errno));
		pf_host_rings_free(r);
		return NULL;
	}
	if (make_region(r, ring_bytes, err, errlen)) {
		pf_host_rings_free(r);
		return NULL;
	}
	pf_poll_init(&r->poll, WAIT_POLL_MIN_NS, WAIT_POLL_MAX_NS);
	/* Asleep unless waiting: the endpoint kicks us (spec 11.4). */
	pf_ring_consumer_rest(&r->rx);
	fds[0] = r->region_fd;
	fds[1] = r->ep_bell;
	fds[2] = r->our_bell;
	*region_size = r->region_size;
	return r;
}

ssize_t pf_host_rings_send(struct pf_host_rings *r, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = pf_ring_write(&r->tx, buf, len);

		if (n < 0) {
			errno = EPROTO;
			return -1;
		}
		if (n > 0) {
			pf_ring_producer_awake(&r->tx);
			if (pf_ring_consumer_needs_kick(&r->tx))
				pf_doorbell_ring(r->ep_bell);
			return n;
		}
		/* Full: the endpoint kicks us once it has read (11.4). */
		if (pf_ring_producer_wait(&r->tx)) {
			errno = EAGAIN;
			return -1;
		}
	}
}

/*
 * The socket beside the rings carries nothing to a host but the
 * endpoint's end (spec 11.1): any byte breaks the rule.
 */
static void read_socket(struct pf_host_rings *r)
{
	uint8_t b[16];
	ssize_t n = recv(r->sock, b, sizeof(b), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		       errno != EINTR))
		r->hung_up = true;
	else if (n > 0)
		r->stray_bytes = true;
}

ssize_t pf_host_rings_recv(struct pf_host_rings *r, void *buf, size_t len)
{
	ssize_t n = pf_ring_read(&r->rx, buf, len);

	if (n < 0) {
		errno = EPROTO;
		return -1;
	}
	if (n > 0) {
		if (pf_ring_producer_needs_kick(&r->rx))
			pf_doorbell_ring(r->ep_bell);
		return n;
	}
	if (!r->hung_up && !r->stray_bytes)
		read_socket(r);
	if (r->stray_bytes) {
		errno = EBADMSG;
		return -1;
	}
	if (r->hung_up && !pf_ring_readable(&r->rx))
		return 0;
	errno = EAGAIN;
	return -1;
}

static bool has_news(struct pf_host_rings *r, bool want_write)
{
	return pf_ring_readable(&r->rx) || r->rx.corrupt || r->hung_up ||
	       r->stray_bytes || (want_write && pf_ring_writable(&r->tx));
}

/*
 * Poll for the window the polling rule gives, from @start; the time
 * until bytes came is a gap it learns from.  What came meanwhile is seen
 * by the rest (11.4).
 */
static bool poll_ring(struct pf_host_rings *r, bool want_write, uint64_t start)
{
	uint64_t window = pf_poll_window(&r->poll), now = start;

	pf_ring_consumer_awake(&r->rx);
	do {
		if (has_news(r, want_write)) {
			if (pf_ring_readable(&r->rx))
				pf_poll_gap(&r->poll, now - start);
			pf_ring_consumer_rest(&r->rx);
			return true;
		}
		if (!pf_poll_pause(&r->tx, now - start))
			break;          /* the CPU is contended: sleep */
		now = pf_ring_now_ns();
	} while (now - start < window);
	return pf_ring_consumer_rest(&r->rx);
}

int pf_host_rings_wait(struct pf_host_rings *r, bool want_write, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = r->our_bell, .events = POLLIN },
		{ .fd = r->sock, .events = POLLIN },
	};
	uint64_t start = pf_ring_now_ns();
	int n;

	if (has_news(r, want_write) || poll_ring(r, want_write, start))
		return 1;
	do {
		n = poll(p, 2, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (p[0].revents)
		pf_doorbell_drain(r->our_bell);
	if (p[1].revents)
		read_socket(r);
	/* A gap longer than the window: the rule learns it too. */
	if (pf_ring_readable(&r->rx))
		pf_poll_gap(&r->poll, pf_ring_now_ns() - start);
	return n > 0;
}
