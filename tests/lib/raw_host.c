/* A hand-driven host for misbehaving-peer tests; see raw_host.h. */
#include "raw_host.h"

#include <glib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "handshake.h"
#include "pciefw.h"
#include "transport.h"

void raw_host_open(struct raw_host *r, const char *addr, uint32_t max_payload)
{
	struct pf_hello_params hp;
	struct pf_addr a;
	struct pf_buf b;
	char err[256];

	memset(r, 0, sizeof(*r));
	g_assert_cmpint(pf_addr_parse(addr, &a, err, sizeof(err)), ==, 0);
	r->fd = pf_connect(&a, err, sizeof(err));
	if (r->fd < 0)
		g_error("connect %s: %s", addr, err);
	r->max_payload = max_payload;
	pf_frame_decoder_init(&r->dec, PCIEFW_MAX_FRAME(PCIEFW_MAX_PAYLOAD));
	pf_codec_init(&r->codec);
	pf_hello_defaults(&hp, "raw-test-host");
	hp.max_payload = max_payload;
	pf_buf_init(&b);
	g_assert_cmpint(pf_put_hello(&b, &hp), ==, 0);
	raw_host_send(r, &b);
	pf_buf_free(&b);
	g_assert_nonnull(raw_host_expect(r, PCIEFW__MESSAGE__BODY_HELLO, 5000));
	g_assert_nonnull(raw_host_expect(r, PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION, 5000));
}

void raw_host_close(struct raw_host *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	pf_frame_decoder_free(&r->dec);
	pf_codec_free(&r->codec);
}

void raw_host_send(struct raw_host *r, struct pf_buf *b)
{
	g_assert_cmpint(pf_write_all(r->fd, pf_buf_peek(b), pf_buf_used(b)), ==, 0);
	pf_buf_clear(b);
}

PfMessage *raw_host_next(struct raw_host *r, int timeout_ms)
{
	for (;;) {
		const uint8_t *body;
		size_t used, blen;
		PfMessage *m;
		char err[256];
		int rc;

		if (r->in_pos < r->in_len) {
			rc = pf_frame_decoder_push(&r->dec, r->in + r->in_pos,
						   r->in_len - r->in_pos, &used,
						   &body, &blen);
			r->in_pos += used;
			g_assert_cmpint(rc, >=, 0);
			if (rc == PF_OK) {
				rc = pf_codec_decode(&r->codec, body, blen, &m, err,
						     sizeof(err));
				if (rc)
					g_error("undecodable message: %s", err);
				return m;
			}
		}
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return NULL;
		n = read(r->fd, r->in, sizeof(r->in));
		if (n <= 0)
			return NULL;
		r->in_len = (size_t)n;
		r->in_pos = 0;
	}
}

PfMessage *raw_host_expect(struct raw_host *r, Pciefw__Message__BodyCase kind,
			   int timeout_ms)
{
	PfMessage *m;

	while ((m = raw_host_next(r, timeout_ms)) && m->body_case != kind)
		;
	return m;
}
