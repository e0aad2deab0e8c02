/* Hello handshake and version negotiation; see handshake.h and spec 2. */
#include "handshake.h"

#include <stdio.h>
#include <string.h>

void pf_hello_defaults(struct pf_hello_params *p, const char *name)
{
	p->version_major = PCIEFW_VERSION_MAJOR;
	p->version_minor = PCIEFW_VERSION_MINOR;
	p->features = PCIEFW_FEATURES_DEFAULT;
	p->name = name;
	p->max_payload = PCIEFW_DEFAULT_PAYLOAD;
}

int pf_put_hello(struct pf_buf *o, const struct pf_hello_params *p)
{
	PfMessage m = PCIEFW__MESSAGE__INIT;
	Pciefw__Hello h = PCIEFW__HELLO__INIT;

	h.magic = PCIEFW_MAGIC;
	h.version_major = p->version_major;
	h.version_minor = p->version_minor;
	h.features = p->features;
	h.peer_name = (char *)(p->name ? p->name : "");
	h.max_payload = p->max_payload;
	m.body_case = PCIEFW__MESSAGE__BODY_HELLO;
	m.hello = &h;
	return pf_codec_encode(&m, o);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Keep a peer's name printable in our logs whatever it sent. */
static void copy_name(char *dst, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i < PCIEFW_MAX_NAME; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

int pf_hello_negotiate(const struct pf_hello_params *local,
		       const PfMessage *first, struct pf_session *s,
		       char *err, size_t errlen)
{
	const Pciefw__Hello *h;

	if (first->body_case != PCIEFW__MESSAGE__BODY_HELLO) {
		snprintf(err, errlen, "expected hello, got %s",
			 pf_msg_kind_name(first->body_case));
		return PF_ERR_NO_HELLO;
	}
	h = first->hello;
	if (h->magic != PCIEFW_MAGIC) {
		snprintf(err, errlen, "bad magic 0x%08x in hello (expected 0x%08x)",
			 h->magic, PCIEFW_MAGIC);
		return PF_ERR_BAD_MAGIC;
	}
	if (h->version_major != local->version_major) {
		snprintf(err, errlen,
			 "protocol version mismatch: peer speaks %u.%u, we speak %u.%u",
			 h->version_major, h->version_minor,
			 local->version_major, local->version_minor);
		return PF_ERR_VERSION;
	}
	if (h->max_payload < PCIEFW_MIN_PAYLOAD) {
		snprintf(err, errlen, "peer max payload %u below the minimum %u",
			 h->max_payload, PCIEFW_MIN_PAYLOAD);
		return PF_ERR_INVALID;
	}
	memset(s, 0, sizeof(*s));
	s->version_major = local->version_major;
	s->version_minor = min_u32(h->version_minor, local->version_minor);
	s->features = h->features & local->features & PCIEFW_FEATURES_KNOWN;
	/* Introduced in 1.1: not with a 1.0 peer (spec 2.2, 10.1). */
	if (s->version_minor < 1)
		s->features &= ~PCIEFW_FEATURE_GUEST_MEMORY;
	/* Introduced in 1.2 (spec 11.1). */
	if (s->version_minor < 2)
		s->features &= ~PCIEFW_FEATURE_SHM_RINGS;
	/* Introduced in 1.3 (spec 12.1). */
	if (s->version_minor < 3)
		s->features &= ~PCIEFW_FEATURE_INTERRUPT_CONFIG;
	/* Introduced in 1.4, and only beside the rings (spec 11.7). */
	if (s->version_minor < 4 || !(s->features & PCIEFW_FEATURE_SHM_RINGS))
		s->features &= ~PCIEFW_FEATURE_REG_RECORDS;
	s->max_payload = min_u32(min_u32(h->max_payload, local->max_payload),
				 PCIEFW_MAX_PAYLOAD);
	copy_name(s->peer_name, h->peer_name);
	return PF_OK;
}
