/*
 * Trace files (spec 6): captured message streams as pcapng, one Enhanced
 * Packet Block per record, link type LINKTYPE_USER0 (147).  Packet data is
 * a 4-byte pseudo-header (version, direction, record type, reserved)
 * followed by the frame exactly as on the wire, length prefix included
 * (message records), the session's description (session records), or the
 * raw bytes that could not be taken as a message (malformed records).
 */
#ifndef PCIEFW_TRACE_H
#define PCIEFW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pciefw.h"

#define PF_TRACE_LINKTYPE        147u   /* LINKTYPE_USER0 */
#define PF_TRACE_PSEUDO_VERSION  1u
#define PF_TRACE_PSEUDO_LEN      4u
/* Largest block the reader accepts: bounds memory on hostile files. */
#define PF_TRACE_MAX_BLOCK       (PCIEFW_MAX_FRAME(PCIEFW_MAX_PAYLOAD) + 4096)

/* Pseudo-header byte 2 (spec 6). */
enum pf_trace_type {
	PF_REC_MESSAGE = 0,       /* a frame as on the wire */
	PF_REC_SESSION = 1,       /* a connection starts: text describing it */
	PF_REC_MALFORMED = 2,     /* received bytes that broke framing or a rule */
	PF_REC_NOTE = 3,          /* what the recorder did with the message before */
};

/*
 * Pseudo-header byte 3 of a message record (spec 6): the message travelled
 * as a binary register record (spec 11.7), recorded as the Message it
 * stands for.
 */
#define PF_TRACE_FLAG_REGREC     0x01u

/* Absolute direction, the same whichever end recorded it. */
enum pf_dir {
	PF_DIR_TO_ENDPOINT = 0,   /* host (QEMU side) to endpoint */
	PF_DIR_TO_HOST = 1,       /* endpoint to host */
};

struct pf_trace_writer;

/*
 * Create @path (truncating it) and write the section and interface
 * headers.  @recorder names the program, e.g. "pciefw-endpoint".
 */
struct pf_trace_writer *pf_trace_create(const char *path, const char *recorder,
					char *err, size_t errlen);
/*
 * Bound the capture: before a record would take the file above @max_bytes
 * (headers included), it is renamed FILE.1 (FILE.1 to FILE.2, ... up to
 * FILE.@keep, the oldest dropped) and a new FILE is started.  Only a file
 * holding one record larger than the limit exceeds it.  0: unbounded.
 */
void pf_trace_set_limit(struct pf_trace_writer *w, uint64_t max_bytes,
			unsigned keep);
/*
 * Append one message (its encoded body; the length prefix is added).
 * Buffered; returns 0, PF_ERR_OVERSIZE or PF_ERR_IO.
 */
int pf_trace_write(struct pf_trace_writer *w, uint64_t ts_ns, enum pf_dir dir,
		   const uint8_t *body, size_t body_len);
/*
 * A binary register record (regrec.h), as the Message it stands for with
 * PF_TRACE_FLAG_REGREC; a malformed one as a malformed record.
 */
int pf_trace_write_regrec(struct pf_trace_writer *w, uint64_t ts_ns,
			  enum pf_dir dir, const uint8_t *rec);
/* A session record: a connection starts; @text says which (spec 6). */
/*
 * Append every frame of @p..@p+@len (length prefixes included, as queued
 * for sending) as message records: what a side sends, binary register
 * records among them.  A partial frame at the end is left out.  NULL @w:
 * nothing.
 */
void pf_trace_write_frames(struct pf_trace_writer *w, uint64_t ts_ns,
			   enum pf_dir dir, const uint8_t *p, size_t len);
int pf_trace_write_session(struct pf_trace_writer *w, uint64_t ts_ns,
			   const char *text);
/*
 * A malformed record: @raw bytes received in direction @dir that were not
 * a valid message (a whole frame, length prefix included, or the bytes of
 * a frame header that broke framing).  Longer input is cut to
 * PF_TRACE_MAX_MALFORMED bytes.
 */
int pf_trace_write_malformed(struct pf_trace_writer *w, uint64_t ts_ns,
			     enum pf_dir dir, const uint8_t *raw, size_t len);
#define PF_TRACE_MAX_MALFORMED   4096u
/*
 * A note record: what the recorder made of the message record just before
 * it, in text (e.g. "msix vector 2: pending: vector masked"); @dir is that
 * message's.  Cut to PF_TRACE_MAX_NOTE bytes.  Rotation never puts a note
 * at the start of a file, away from its record.
 */
#define PF_TRACE_MAX_NOTE        1024u
int pf_trace_write_note(struct pf_trace_writer *w, uint64_t ts_ns,
			enum pf_dir dir, const char *text);
int pf_trace_flush(struct pf_trace_writer *w);
/* Flush and close; returns 0 or PF_ERR_IO. */
int pf_trace_close(struct pf_trace_writer *w);

struct pf_trace_record {
	/*
	 * Record number, from 1, every type counted: the frame number
	 * Wireshark gives the record (spec 6), as every tool prints it.
	 */
	uint64_t index;
	uint64_t ts_ns;          /* nanoseconds since the epoch */
	enum pf_dir dir;
	enum pf_trace_type type;
	bool regrec;             /* MESSAGE: it travelled as a binary record */
	const uint8_t *body;     /* MESSAGE: Message bytes, without the length
				  * prefix; else the record's bytes as written */
	size_t body_len;
};

struct pf_trace_reader;

/*
 * Open a trace for reading.  NULL with @err set if the file cannot be
 * opened, is empty, or is not a little-endian pcapng file.
 */
struct pf_trace_reader *pf_trace_open(const char *path, char *err, size_t errlen);
/*
 * Next message record (session and malformed records are skipped unless
 * pf_trace_want_all() was called).  PF_OK (record valid until the next
 * call), PF_EOF at a clean end, PF_ERR_TRUNCATED when the file ends inside
 * a block (every earlier record was good), PF_ERR_CORRUPT or PF_ERR_FORMAT
 * with @err set.
 */
int pf_trace_next(struct pf_trace_reader *r, struct pf_trace_record *rec,
		  char *err, size_t errlen);
void pf_trace_close_reader(struct pf_trace_reader *r);
/* Make pf_trace_next() return records of every type. */
void pf_trace_want_all(struct pf_trace_reader *r);

/* Wall-clock time in nanoseconds, for record timestamps. */
uint64_t pf_now_ns(void);

#endif /* PCIEFW_TRACE_H */
