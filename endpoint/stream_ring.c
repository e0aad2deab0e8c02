/*
 * The shared-memory transport (docs/protocol.md 11): the frames go
 * through two byte rings in a region the host created; the socket stays
 * beside them, carrying fds (each batch with one zero byte) and showing
 * the host's hang-up.
 *
 * Its readiness is its own (spec 11.4): it polls the ring past its last
 * work for as long as the polling rule says the host's next bytes are
 * near (ring.h: from the gaps it measured between the host's batches),
 * then announces that it sleeps and waits for its doorbell, which the
 * host kicks for new bytes and, when our ring was full, for room.  The
 * socket is watched for fds and for the host's end.
 */
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring.h"

/* How long we poll the rings for more before sleeping (spec 11.4). */
#define POLL_MIN_NS 20000
#define POLL_MAX_NS 500000
/* One idle callback's poll, before the loop's other watchers get a turn. */
#define POLL_SLICE_NS 20000

struct ring_stream {
	struct pf_stream base;      /* base.fd: the socket */
	void *region;
	size_t region_size;
	int bell_fd;                /* our doorbell: the host kicks it */
	int peer_bell;              /* the host's doorbell: we kick it */
	struct pf_ring rx, tx;
	bool hung_up;               /* the socket said the host is gone */
	bool stray_bytes;           /* the socket carried more than fd carriers */
	ev_io bell;
	ev_idle poll;               /* polls the ring while active */
	struct pf_poll rule;
	uint64_t last_work_ns;      /* when we last finished the host's bytes */
};

static struct ring_stream *ring_of(struct pf_stream *st)
{
	return (struct ring_stream *)st;
}

/* Nothing can be trusted to carry an Error any more (11.5). */
static ssize_t fail_eproto(struct ring_stream *r)
{
	snprintf(r->base.why, sizeof(r->base.why), "the host broke the "
		 "shared-memory rings (an impossible index; spec 11.5)");
	errno = EPROTO;
	return -1;
}

/* The host broke the socket's rule (11.1): an Error can still go out. */
static ssize_t fail_socket_rule(struct ring_stream *r)
{
	snprintf(r->base.why, sizeof(r->base.why), "bytes on the socket beside "
		 "the rings other than one zero byte with each batch of file "
		 "descriptors (spec 11.1)");
	errno = EBADMSG;
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
	unsigned fds_before = r->base.fds.n;
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
	    (r->base.fds.n == fds_before && !r->base.fds.overflow))
		r->stray_bytes = true;
}

static ssize_t ring_recv(struct pf_stream *st, void *buf, size_t len)
{
	struct ring_stream *r = ring_of(st);
	ssize_t n = pf_ring_read(&r->rx, buf, len);

	if (n < 0)
		return fail_eproto(r);
	if (r->stray_bytes)
		return fail_socket_rule(r);
	if (n > 0) {
		if (pf_ring_producer_needs_kick(&r->rx))
			pf_doorbell_ring(r->peer_bell);
		return n;
	}
	/* Empty: whatever woke us may have been the socket. */
	drain_socket(r);
	if (r->stray_bytes)
		return fail_socket_rule(r);
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
			return fail_eproto(r);
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

/* Bytes to read, or a broken ring or socket rule that recv reports. */
static bool has_news(struct ring_stream *r)
{
	return pf_ring_readable(&r->rx) || r->rx.corrupt || r->stray_bytes;
}

/*
 * Poll the ring while the host's next bytes are near, as the polling rule
 * says (spec 11.4), then announce sleep and wait for the doorbell.  One
 * call polls for a slice only, so the loop's other watchers still run;
 * between two looks it gives the CPU away once it has polled a while
 * (pf_poll_pause), so a host sharing our CPU is not kept from sending.
 */
static void poll_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct ring_stream *r = w->data;
	uint64_t now = pf_ring_now_ns(), slice_end = now + POLL_SLICE_NS;
	bool contended = false;

	do {
		if (has_news(r)) {
			pf_poll_gap(&r->rule, now - r->last_work_ns);
			r->base.ready(r->base.opaque, PF_STREAM_IN);
			/* The owner stopped reading, or failed. */
			if (!ev_is_active(w))
				return;
			r->last_work_ns = now = pf_ring_now_ns();
			continue;
		}
		contended = !pf_poll_pause(&r->tx, now - r->last_work_ns);
		now = pf_ring_now_ns();
	} while (now < slice_end && !contended);
	if (!contended && now - r->last_work_ns < pf_poll_window(&r->rule))
		return;
	if (pf_ring_consumer_sleep(&r->rx))
		ev_idle_stop(loop, w);
}

/* Start polling: the host need not kick us meanwhile (11.4). */
static void poll_start(struct ring_stream *r)
{
	pf_ring_consumer_awake(&r->rx);
	r->last_work_ns = pf_ring_now_ns();
	ev_idle_start(r->base.loop, &r->poll);
}

/* Kicked: new bytes, or room in our ring. */
static void bell_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ring_stream *r = w->data;

	pf_doorbell_drain(w->fd);
	/* Asleep through a gap: the rule learns how long it was. */
	if (!ev_is_active(&r->poll) && pf_ring_readable(&r->rx))
		pf_poll_gap(&r->rule, pf_ring_now_ns() - r->last_work_ns);
	if (r->base.want_in && !ev_is_active(&r->poll))
		poll_start(r);
	r->base.ready(r->base.opaque,
		      PF_STREAM_OUT | (r->base.want_in ? PF_STREAM_IN : 0));
}

/*
 * Reading: the ring polled, the socket watched (fds, the host's end), the
 * doorbell.  Waiting for room: the doorbell only, which a full ring asked
 * the host to kick (ring_send).
 */
static void ring_watch(struct pf_stream *st)
{
	struct ring_stream *r = ring_of(st);

	if (!st->loop)
		return;
	pf_stream_watch_socket(st, st->want_in, false);
	if (st->want_in || st->want_out)
		ev_io_start(st->loop, &r->bell);
	else
		ev_io_stop(st->loop, &r->bell);
	if (!st->want_in)
		ev_idle_stop(st->loop, &r->poll);
	else if (!ev_is_active(&r->poll))
		poll_start(r);
}

static void ring_collect_fds(struct pf_stream *st)
{
	drain_socket(ring_of(st));
}

static void ring_free(struct pf_stream *st)
{
	struct ring_stream *r = ring_of(st);

	if (r->region)
		munmap(r->region, r->region_size);
	if (r->peer_bell >= 0)
		close(r->peer_bell);
	if (r->bell_fd >= 0)
		close(r->bell_fd);
	free(r);
}

static const struct pf_stream_ops ring_ops = {
	.recv = ring_recv,
	.send = ring_send,
	.watch = ring_watch,
	.free = ring_free,
	.collect_fds = ring_collect_fds,
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
	pf_stream_init(&r->base, &ring_ops, fd);
	r->bell_fd = fds[1];
	r->peer_bell = fds[2];
	ev_io_init(&r->bell, bell_cb, r->bell_fd, EV_READ);
	ev_idle_init(&r->poll, poll_cb);
	r->bell.data = r->poll.data = r;
	pf_poll_init(&r->rule, POLL_MIN_NS, POLL_MAX_NS);
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
