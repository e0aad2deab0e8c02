/*
 * pciefw-replay internals: the trace loaded as a script, message
 * comparison, a simulated guest memory, the connection, and the replay
 * engine shared by both roles (host and endpoint).
 */
#ifndef PCIEFW_REPLAY_H
#define PCIEFW_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "codec.h"
#include "frame.h"
#include "handshake.h"
#include "rx.h"
#include "trace.h"

/* Exit statuses (pciefw-replay --help). */
enum {
	RP_EXIT_MATCH = 0,
	RP_EXIT_DIVERGED = 1,
	RP_EXIT_USAGE = 2,
	RP_EXIT_FAILED = 3,      /* unreadable trace, connection failure */
};

/* ---- The trace as a script (script.c) ---- */

struct rp_rec {
	uint64_t index;          /* record number in the file (from 1, every type
				  * counted), as pciefw-trace prints it */
	uint64_t ts_ns;
	enum pf_dir dir;
	PfMessage *m;            /* owned (protobuf-c default allocator) */
	long req;                /* a completion: position of the request it answers */
	long cpl;                /* a request: position of its completion */

	/* Replay state. */
	bool done;               /* ours: sent; the peer's: matched or given up */
	bool missed;             /* the peer's: never came */
	bool live_set;           /* the peer's: what came in its place */
	bool live_same;          /* ... equal to the recording (modulo --ignore) */
	int live_kind;
	bool live_has_tag;
	uint32_t live_tag;
	uint64_t live_addr;
	uint32_t live_size;
	bool answered;           /* a live request we have answered */
};

/* One connection's worth of records: [first, end). */
struct rp_session {
	size_t first, end;
	long host_hello, ep_hello, desc;   /* positions; -1 if absent */
};

struct rp_script {
	struct rp_rec *rec;              /* the messages replayed */
	size_t n;
	uint64_t records;                /* records of every type in the file */
	uint64_t messages;               /* message records, replayed or not */
	struct rp_session *sess;
	size_t n_sess;
	uint64_t t0;                       /* timestamp of the first record */
	size_t skipped;                    /* records before the first hello */
	bool truncated;                    /* the file ends inside a record */
	char truncation[512];
};

/*
 * Load a whole trace.  Returns 0, or -1 with the reason in @err: the file
 * cannot be read, is empty, not a pciefw trace, corrupt, truncated (unless
 * @allow_truncated), holds an undecodable record or no handshake.
 */
int rp_script_load(const char *path, bool allow_truncated,
		   struct rp_script *s, char *err, size_t errlen);
void rp_script_free(struct rp_script *s);

/* Non-posted request (carries a tag and expects a completion)? */
bool rp_is_request(const PfMessage *m);

/* ---- Comparison (compare.c) ---- */

#define RP_MAX_IGNORES 32

struct rp_ignores {
	size_t n;
	struct {
		int kind;            /* a Pciefw__Message__BodyCase; 0: every kind */
		char field[64];
	} f[RP_MAX_IGNORES];
};

/* Add "FIELD" or "KIND.FIELD" (comma-separated list); -1 and @err if unknown. */
int rp_ignores_parse(struct rp_ignores *ig, const char *spec, char *err,
		     size_t errlen);

/*
 * Equal modulo the ignored fields (and Hello.peer_name, always)?  When
 * not, @diff names the differing fields ("kind" when the kinds differ).
 */
bool rp_msg_equal(const struct rp_ignores *ig, const PfMessage *want,
		  const PfMessage *got, char *diff, size_t difflen);

/*
 * When @want and @got are of one kind and their data differ, print to @f
 * the first differing byte's offset and both data around it in hex
 * (datadiff.c); false, printing nothing, otherwise.
 */
bool rp_print_data_diff(FILE *f, const PfMessage *want, const PfMessage *got);

/* ---- Simulated guest memory (mem.c) ---- */

struct rp_mem;

struct rp_mem *rp_mem_new(void);
void rp_mem_free(struct rp_mem *m);
void rp_mem_write(struct rp_mem *m, uint64_t addr, const uint8_t *p, size_t len);
/* Bytes never written read as 0. */
void rp_mem_read(struct rp_mem *m, uint64_t addr, uint8_t *p, size_t len);

/* ---- Connection (conn.c) ---- */

struct rp_conn {
	int fd;
	struct pf_rx rx;         /* what the peer sends (rx.h) */
	const PfMessage *got;    /* the message rx handed over */
	struct pf_buf out;
	uint8_t *rbuf;
	size_t rlen, roff;       /* received bytes not yet taken: [roff, rlen) */
	bool eof;
	char why[512];           /* why the last call failed */
};

void rp_conn_init(struct rp_conn *c, int fd);
/* The session is agreed: the peer's messages within its max payload. */
void rp_conn_set_max_payload(struct rp_conn *c, uint32_t max_payload);
void rp_conn_free(struct rp_conn *c);
/*
 * Next message from the peer, waiting up to @timeout_ms (< 0: forever)
 * while draining our output.  PF_OK with *@m (valid until the next call),
 * PF_ERR_TIMEOUT, PF_ERR_CLOSED at the end of the stream, or another
 * PF_ERR_* (framing, undecodable or invalid message: @why says which).
 */
int rp_conn_next(struct rp_conn *c, int timeout_ms, PfMessage **m);
/* Queue one message and write what the socket takes now. */
int rp_conn_send(struct rp_conn *c, const PfMessage *m);
int rp_conn_send_buf(struct rp_conn *c, struct pf_buf *b);
/* Write everything queued (bounded by @timeout_ms); 0 or PF_ERR_*. */
int rp_conn_flush(struct rp_conn *c, int timeout_ms);

/* ---- The replay (engine.c) ---- */

enum rp_role { RP_AS_HOST, RP_AS_ENDPOINT };

struct rp_opts {
	enum rp_role role;
	const char *trace;
	const char *addr;        /* host: the endpoint; endpoint: where to listen */
	bool timing;
	bool keep_going;
	bool loose_irqs;         /* interrupts: a stream of their own */
	bool allow_truncated;
	bool progress;
	int timeout_ms;          /* wait for an expected message; < 0: forever */
	unsigned context;
	unsigned long session;   /* 0: every session; N: only the Nth */
	uint64_t until;          /* last record index replayed */
	struct rp_ignores ig;
};

/* Run the whole replay; returns an RP_EXIT_* status. */
int rp_replay(const struct rp_opts *o, struct rp_script *s);

/* Monotonic clock, nanoseconds. */
uint64_t rp_mono_ns(void);

#endif /* PCIEFW_REPLAY_H */
