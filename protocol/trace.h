/*
 * Trace files (spec 6): captured message streams as pcapng, one Enhanced
 * Packet Block per frame, link type LINKTYPE_USER0 (147).  Packet data is
 * a 4-byte pseudo-header (version, direction, 2 reserved bytes) followed
 * by the frame exactly as on the wire, length prefix included.
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
 * Bound the capture: once the file would exceed @max_bytes, it is renamed
 * FILE.1 (FILE.1 to FILE.2, ... up to FILE.@keep, the oldest dropped) and a
 * new FILE is started, headers included.  @max_bytes 0: unbounded.
 */
void pf_trace_set_limit(struct pf_trace_writer *w, uint64_t max_bytes,
			unsigned keep);
/*
 * Append one message (its encoded body; the length prefix is added).
 * Buffered; returns 0, PF_ERR_OVERSIZE or PF_ERR_IO.
 */
int pf_trace_write(struct pf_trace_writer *w, uint64_t ts_ns, enum pf_dir dir,
		   const uint8_t *body, size_t body_len);
int pf_trace_flush(struct pf_trace_writer *w);
/* Flush and close; returns 0 or PF_ERR_IO. */
int pf_trace_close(struct pf_trace_writer *w);

struct pf_trace_record {
	uint64_t index;          /* 0-based record number */
	uint64_t ts_ns;          /* nanoseconds since the epoch */
	enum pf_dir dir;
	const uint8_t *body;     /* Message bytes, without the length prefix */
	size_t body_len;
};

struct pf_trace_reader;

/*
 * Open a trace for reading.  NULL with @err set if the file cannot be
 * opened, is empty, or is not a little-endian pcapng file.
 */
struct pf_trace_reader *pf_trace_open(const char *path, char *err, size_t errlen);
/*
 * Next record.  PF_OK (record valid until the next call), PF_EOF at a clean
 * end, PF_ERR_TRUNCATED when the file ends inside a block (every earlier
 * record was good), PF_ERR_CORRUPT or PF_ERR_FORMAT with @err set.
 */
int pf_trace_next(struct pf_trace_reader *r, struct pf_trace_record *rec,
		  char *err, size_t errlen);
void pf_trace_close_reader(struct pf_trace_reader *r);

/* Wall-clock time in nanoseconds, for record timestamps. */
uint64_t pf_now_ns(void);

#endif /* PCIEFW_TRACE_H */
