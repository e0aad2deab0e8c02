/*
 * The hello handshake (spec 2): both sides send Hello first; the session
 * parameters are the agreement of the two Hellos.
 */
#ifndef PCIEFW_HANDSHAKE_H
#define PCIEFW_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "pciefw.h"

struct pf_hello_params {
	uint32_t version_major;
	uint32_t version_minor;
	uint64_t features;
	const char *name;
	uint32_t max_payload;
};

/* What both sides agreed on. */
struct pf_session {
	uint32_t version_major;
	uint32_t version_minor;   /* the lower of the two minors */
	uint64_t features;        /* known bits both sides set */
	uint32_t max_payload;     /* the lower of the two */
	char peer_name[PCIEFW_MAX_NAME + 1];
};

/* This build's defaults: current version, all known features. */
void pf_hello_defaults(struct pf_hello_params *p, const char *name);

int pf_put_hello(struct pf_buf *o, const struct pf_hello_params *p);

/*
 * Judge the first message received from the peer.  Returns PF_OK and fills
 * @s; PF_ERR_NO_HELLO if @first is not a Hello; PF_ERR_BAD_MAGIC; or
 * PF_ERR_VERSION with both versions named in @err.
 */
int pf_hello_negotiate(const struct pf_hello_params *local,
		       const PfMessage *first, struct pf_session *s,
		       char *err, size_t errlen);

#endif /* PCIEFW_HANDSHAKE_H */
