/*
 * libpciefw: the shared-memory transport's byte rings (docs/protocol.md 11).
 *
 * One region, created by the host, holds two single-producer,
 * single-consumer byte rings: host to endpoint and endpoint to host.  Each
 * carries the same framed messages a socket would; only the bytes move
 * differently.  Everything a peer writes into the region is checked before
 * it is used: the region is shared with a process we do not trust.
 */
#ifndef PCIEFW_RING_H
#define PCIEFW_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The region's first bytes (spec 11.2): "PFRG" as a little-endian word. */
#define PF_RING_MAGIC          0x47524650u
#define PF_RING_LAYOUT_VERSION 1u
#define PF_RING_HEADER_SIZE    4096u
#define PF_RING_MIN_BYTES      4096u
#define PF_RING_MAX_BYTES      (16u * 1024 * 1024)
#define PF_RING_DEFAULT_BYTES  (1024u * 1024)
#define PF_RING_CACHE_LINE     64u

/* Which ring of the region: named by who writes into it. */
enum pf_ring_dir { PF_RING_TO_ENDPOINT = 0, PF_RING_TO_HOST = 1 };

/*
 * One ring's control words, each on a cache line of its own so that the
 * producer's and the consumer's stores do not share a line.
 */
struct pf_ring_ctl {
	uint64_t tail;            /* bytes ever written: the producer's */
	uint8_t pad0[PF_RING_CACHE_LINE - 8];
	uint64_t head;            /* bytes ever read: the consumer's */
	uint8_t pad1[PF_RING_CACHE_LINE - 8];
	uint32_t consumer_asleep; /* 1: kick me when you write */
	uint8_t pad2[PF_RING_CACHE_LINE - 4];
	uint32_t producer_waiting; /* 1: kick me when you read */
	uint8_t pad3[PF_RING_CACHE_LINE - 4];
};

struct pf_ring_header {
	uint32_t magic;
	uint32_t version;
	uint32_t ring_bytes;      /* data bytes of each ring, a power of two */
	uint32_t reserved;
	uint8_t pad[PF_RING_CACHE_LINE - 16];
	struct pf_ring_ctl ctl[2];    /* indexed by enum pf_ring_dir */
};

/* One side's view of one ring.  Its own index lives here, not in shared
 * memory, where the peer could rewrite it. */
struct pf_ring {
	struct pf_ring_ctl *ctl;
	uint8_t *data;
	uint32_t size;
	uint64_t pos;             /* our index: tail if producer, head if consumer */
	bool corrupt;             /* the peer's index was impossible */
};

/* Bytes a region with rings of @ring_bytes needs. */
size_t pf_ring_region_size(uint32_t ring_bytes);

/* Lay out a fresh region (the host does this once, before passing it). */
int pf_ring_region_init(void *base, size_t size, uint32_t ring_bytes);

/*
 * Check a region received from the peer and attach @r to ring @dir of it.
 * Returns PF_OK or PF_ERR_INVALID with the reason in @err.
 */
int pf_ring_attach(struct pf_ring *r, void *base, size_t size,
		   enum pf_ring_dir dir, bool producer, char *err, size_t errlen);

/*
 * Producer: copy up to @len bytes in; returns the bytes written (0 when
 * full), or -1 if the consumer's index is impossible (r->corrupt).
 */
ssize_t pf_ring_write(struct pf_ring *r, const void *buf, size_t len);

/*
 * Consumer: copy up to @len bytes out; returns the bytes read (0 when
 * empty), or -1 if the producer's index is impossible (r->corrupt).
 */
ssize_t pf_ring_read(struct pf_ring *r, void *buf, size_t len);

/* Consumer: bytes waiting (0 also when the ring is corrupt). */
size_t pf_ring_readable(struct pf_ring *r);

/* Producer: bytes that can be written now. */
size_t pf_ring_writable(struct pf_ring *r);

/*
 * The wake-up protocol (spec 11.4).  A consumer about to sleep announces
 * it and looks once more: false means bytes arrived meanwhile and it must
 * not sleep.  A producer that wrote asks whether the consumer sleeps and
 * must be kicked.  Likewise for a producer waiting for room.
 */
bool pf_ring_consumer_sleep(struct pf_ring *r);
void pf_ring_consumer_awake(struct pf_ring *r);
/*
 * For a consumer that is asleep unless it spins (the host): announce
 * sleep for good; true if bytes are waiting, which the caller reads.
 */
bool pf_ring_consumer_rest(struct pf_ring *r);
bool pf_ring_consumer_needs_kick(struct pf_ring *r);
bool pf_ring_producer_wait(struct pf_ring *r);
void pf_ring_producer_awake(struct pf_ring *r);
bool pf_ring_producer_needs_kick(struct pf_ring *r);

/*
 * The polling rule (spec 11.4): how long a side polls for the next bytes
 * before it sleeps, learnt from the gaps it measured -- the endpoint:
 * from the end of its work on the host's last bytes to the arrival of the
 * next; a host waiting for a completion: from its request to the
 * completion.  It polls for 5/4 of the gap that three in four of the last
 * PF_POLL_GAPS were at most, plus PF_POLL_SLACK_NS, within [min, max]; if
 * that gap is above max (the CPU budget of one wait), it polls only min.
 */
#define PF_POLL_GAPS 16
#define PF_POLL_SLACK_NS 2000u
/*
 * Between two looks a poller pauses on the CPU (it sees bytes within
 * nanoseconds) for PF_POLL_TIGHT_NS, and for up to PF_POLL_BUSY_NS while
 * its peer is seen running (it has read everything we wrote); otherwise
 * it gives its CPU away (sched_yield), so that a peer sharing our CPU
 * runs: polling must not keep from running the very peer it waits for.
 * A yield that kept it off the CPU for PF_POLL_CONTENDED_NS means other
 * work wants this CPU too: polling then only loses it, and a sleeper that
 * the doorbell wakes gets it back sooner, so it sleeps.
 */
#define PF_POLL_TIGHT_NS 500u
#define PF_POLL_BUSY_NS 20000u
#define PF_POLL_CONTENDED_NS 20000u

struct pf_poll {
	uint64_t gaps[PF_POLL_GAPS];    /* the last ones, oldest overwritten */
	unsigned next;
	uint64_t min_ns, max_ns;
	uint64_t window_ns;             /* the rule's answer, kept current */
	bool stale;                     /* a gap came since it was worked out */
};

void pf_poll_init(struct pf_poll *p, uint64_t min_ns, uint64_t max_ns);
/* A gap was measured (ns). */
void pf_poll_gap(struct pf_poll *p, uint64_t gap_ns);
/* How long to poll now (ns). */
uint64_t pf_poll_window(struct pf_poll *p);
/*
 * Between two looks at the ring, having polled @polled_ns so far, with
 * @tx our ring to the peer: on the CPU, or the CPU given away (above).
 * False when the CPU is contended: stop polling and sleep.
 */
bool pf_poll_pause(struct pf_ring *tx, uint64_t polled_ns);

/* Monotonic nanoseconds. */
uint64_t pf_ring_now_ns(void);

/* One turn of a polling loop: let a sibling hardware thread run. */
static inline void pf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * The receiving end of a RingSetup (spec 11.1): map the region the peer
 * made, if it is one we can trust not to shrink (protocol/shared_fd.h),
 * of a size within the layout's bounds.  NULL with the reason in @err.
 * @fd is not closed.
 */
void *pf_ring_region_map(int fd, uint64_t size, char *err, size_t errlen);
/* A doorbell must be an eventfd we can ring without blocking; makes it so. */
bool pf_doorbell_check(int fd, char *err, size_t errlen);

/* Signal / drain an eventfd (the doorbell); errors are the caller's. */
int pf_doorbell_ring(int fd);
void pf_doorbell_drain(int fd);

#endif /* PCIEFW_RING_H */
