/*
 * The shared-memory transport (docs/protocol.md 11): the frames go
 * through two byte rings in a region the host created; the socket stays
 * beside them, carrying fds (each batch with one zero byte) and showing
 * the host's hang-up.
 */
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring.h"

struct ring_stream {
	struct pf_stream base;      /* base.fd: the socket; base.wake_fd: ours */
	void *region;
	size_t region_size;
	int peer_bell;              /* the host's doorbell: we write it */
	struct pf_ring rx, tx;
	bool hung_up;               /* the socket said the host is gone */
	bool stray_bytes;           /* the socket carried more than fd carriers */
};

static struct ring_stream *ring_of(struct pf_stream *st)
{
	return (struct ring_stream *)st;
}

static ssize_t fail_eproto(void)
{
	errno = EPROTO;
	return -1;
}

/*
 * Read one batch of what the socket holds (spec 11.1): a zero byte that
 * carried fds (kept by pf_socket_recv), the host's end of stream, or a
 * violation -- any other byte, or a zero byte without fds.  One recvmsg a
 * call: the kernel returns at most one fd batch per call, and a host that
 * keeps the socket full cannot keep us here (its fds pile up to the
 * limit of 10.2 instead).
 */
static void drain_socket(struct ring_stream *r)
{
	unsigned fds_before = r->base.n_fds;
	uint8_t buf[64];
	ssize_t n;

	do {
		n = pf_socket_recv(&r->base, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		r->hung_up = true;
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			r->hung_up = true;
		return;
	}
	if (n != 1 || buf[0] ||
	    (r->base.n_fds == fds_before && !r->base.fd_overflow))
		r->stray_bytes = true;
}

/* The host broke the socket's rule (11.1): an Error can still go out. */
static ssize_t fail_socket_rule(void)
{
	errno = EBADMSG;
	return -1;
}

static ssize_t ring_recv(struct pf_stream *st, void *buf, size_t len)
{
	struct ring_stream *r = ring_of(st);
	ssize_t n = pf_ring_read(&r->rx, buf, len);

	if (n < 0)
		return fail_eproto();
	if (r->stray_bytes)
		return fail_socket_rule();
	if (n > 0) {
		if (pf_ring_producer_needs_kick(&r->rx))
			pf_doorbell_ring(r->peer_bell);
		return n;
	}
	/* Empty: whatever woke us may have been the socket. */
	drain_socket(r);
	if (r->stray_bytes)
		return fail_socket_rule();
	if (r->hung_up && !pf_ring_readable(&r->rx))
		return 0;
	errno = EAGAIN;
	return -1;
}

static ssize_t ring_send(struct pf_stream *st, const void *buf, size_t len)
{
	struct ring_stream *r = ring_of(st);

	for (;;) {
		ssize_t n = pf_ring_write(&r->tx, buf, len);

		if (n < 0)
			return fail_eproto();
		if (n > 0) {
			pf_ring_producer_awake(&r->tx);
			if (pf_ring_consumer_needs_kick(&r->tx))
				pf_doorbell_ring(r->peer_bell);
			return n;
		}
		/* Full: the host kicks our doorbell once it has read (11.4). */
		if (pf_ring_producer_wait(&r->tx)) {
			errno = EAGAIN;
			return -1;
		}
	}
}

static size_t ring_pending(struct pf_stream *st)
{
	struct ring_stream *r = ring_of(st);

	return pf_ring_readable(&r->rx) + (r->rx.corrupt || r->stray_bytes);
}

static void ring_collect_fds(struct pf_stream *st)
{
	drain_socket(ring_of(st));
}

static bool ring_try_sleep(struct pf_stream *st)
{
	return pf_ring_consumer_sleep(&ring_of(st)->rx);
}

static void ring_awake(struct pf_stream *st)
{
	pf_ring_consumer_awake(&ring_of(st)->rx);
}

static void ring_free(struct pf_stream *st)
{
	struct ring_stream *r = ring_of(st);

	if (r->region)
		munmap(r->region, r->region_size);
	if (r->peer_bell >= 0)
		close(r->peer_bell);
	if (st->wake_fd >= 0)
		close(st->wake_fd);
	free(r);
}

static const struct pf_stream_ops ring_ops = {
	.recv = ring_recv,
	.send = ring_send,
	.pending = ring_pending,
	.free = ring_free,
	.collect_fds = ring_collect_fds,
	.try_sleep = ring_try_sleep,
	.awake = ring_awake,
};

struct pf_stream *pf_stream_ring(int fd, const int fds[PCIEFW_RING_SETUP_FDS],
				 uint64_t region_size, char *err, size_t errlen)
{
	struct ring_stream *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		for (unsigned i = 0; i < PCIEFW_RING_SETUP_FDS; i++)
			close(fds[i]);
		return NULL;
	}
	r->base.ops = &ring_ops;
	r->base.fd = fd;
	r->base.wake_fd = fds[1];
	r->peer_bell = fds[2];
	if (pf_doorbell_check(fds[1], err, errlen) &&
	    pf_doorbell_check(fds[2], err, errlen))
		r->region = pf_ring_region_map(fds[0], region_size, err, errlen);
	close(fds[0]);
	if (!r->region) {
		ring_free(&r->base);
		return NULL;
	}
	r->region_size = (size_t)region_size;
	if (pf_ring_attach(&r->rx, r->region, r->region_size, PF_RING_TO_ENDPOINT,
			   false, err, errlen) != PF_OK ||
	    pf_ring_attach(&r->tx, r->region, r->region_size, PF_RING_TO_HOST,
			   true, err, errlen) != PF_OK) {
		ring_free(&r->base);
		return NULL;
	}
	return &r->base;
}
