/*
 * A host that speaks the protocol by hand: the handshake, then exactly the
 * messages a test sends, and nothing served behind its back.  For tests of
 * peers that misbehave (duplicate completions, never reading, never
 * answering DMA), which the host library, built to behave, cannot be.
 */
#ifndef PCIEFW_TEST_RAW_HOST_H
#define PCIEFW_TEST_RAW_HOST_H

#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "frame.h"

struct raw_host {
	int fd;
	uint32_t max_payload;
	struct pf_frame_decoder dec;
	struct pf_codec codec;
	uint8_t in[65536];
	size_t in_len, in_pos;
};

/* Connect to @addr, exchange hellos, read the description; asserts. */
void raw_host_open(struct raw_host *r, const char *addr, uint32_t max_payload);
void raw_host_close(struct raw_host *r);
/* Write all of @b (blocking) and empty it. */
void raw_host_send(struct raw_host *r, struct pf_buf *b);
/*
 * The endpoint's next message (valid until the next call), NULL at EOF
 * or after @timeout_ms without one.
 */
PfMessage *raw_host_next(struct raw_host *r, int timeout_ms);
/* Skip messages until one of @kind; NULL if the stream ends first. */
PfMessage *raw_host_expect(struct raw_host *r, Pciefw__Message__BodyCase kind,
			   int timeout_ms);

#endif
