/* Hello handshake tests (spec 2): the version negotiation matrix and refusals. */
#include <glib.h>
#include <string.h>

#include "codec.h"
#include "handshake.h"
#include "msg.h"

/* Encode @remote's hello, decode it, and negotiate against @local. */
static int negotiate(const struct pf_hello_params *local,
		     const struct pf_hello_params *remote, uint32_t magic,
		     struct pf_session *s, char *err, size_t errlen)
{
	PfMessage m = PCIEFW__MESSAGE__INIT, *dec;
	Pciefw__Hello h = PCIEFW__HELLO__INIT;
	struct pf_buf b;
	struct pf_codec c;
	int r;

	h.magic = magic;
	h.version_major = remote->version_major;
	h.version_minor = remote->version_minor;
	h.features = remote->features;
	h.peer_name = (char *)remote->name;
	h.max_payload = remote->max_payload;
	m.body_case = PCIEFW__MESSAGE__BODY_HELLO;
	m.hello = &h;
	pf_buf_init(&b);
	pf_codec_init(&c);
	g_assert_cmpint(pf_codec_encode(&m, &b), ==, 0);
	g_assert_cmpint(pf_codec_decode(&c, b.data + 4, b.len - 4, &dec, NULL, 0), ==, 0);
	r = pf_hello_negotiate(local, dec, s, err, errlen);
	pf_codec_free(&c);
	pf_buf_free(&b);
	return r;
}

static void test_matrix(void)
{
	static const struct { uint32_t lmaj, lmin, rmaj, rmin; int r; uint32_t minor; } cases[] = {
		{ 1, 0, 1, 0, PF_OK, 0 },
		{ 1, 0, 1, 5, PF_OK, 0 },   /* minors negotiate down */
		{ 1, 3, 1, 1, PF_OK, 1 },
		{ 1, 7, 1, 7, PF_OK, 7 },
		{ 1, 0, 2, 0, PF_ERR_VERSION, 0 },
		{ 2, 0, 1, 9, PF_ERR_VERSION, 0 },
		{ 1, 0, 0, 0, PF_ERR_VERSION, 0 },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct pf_hello_params l, r;
		struct pf_session s;
		char err[256] = "";
		int ret;

		pf_hello_defaults(&l, "local");
		pf_hello_defaults(&r, "remote");
		l.version_major = cases[i].lmaj;
		l.version_minor = cases[i].lmin;
		r.version_major = cases[i].rmaj;
		r.version_minor = cases[i].rmin;
		ret = negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err));
		g_assert_cmpint(ret, ==, cases[i].r);
		if (ret == PF_OK) {
			g_assert_cmpuint(s.version_minor, ==, cases[i].minor);
			g_assert_cmpstr(s.peer_name, ==, "remote");
		} else {
			/* The refusal names both versions. */
			char *peer = g_strdup_printf("peer speaks %u.%u", cases[i].rmaj,
						     cases[i].rmin);
			char *ours = g_strdup_printf("we speak %u.%u", cases[i].lmaj,
						     cases[i].lmin);

			g_assert_nonnull(strstr(err, peer));
			g_assert_nonnull(strstr(err, ours));
			g_free(peer);
			g_free(ours);
		}
	}
}

/* Spec 10.1: guest memory is offered explicitly and needs minor >= 1. */
static void test_guest_memory_feature(void)
{
	struct pf_hello_params l, r;
	struct pf_session s;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_hello_defaults(&r, "r");
	g_assert_false(l.features & PCIEFW_FEATURE_GUEST_MEMORY);
	l.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_false(s.features & PCIEFW_FEATURE_GUEST_MEMORY);
	r.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_true(s.features & PCIEFW_FEATURE_GUEST_MEMORY);
	/* A 1.0 peer that sets bit 2 did not mean this feature. */
	r.version_minor = 0;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_false(s.features & PCIEFW_FEATURE_GUEST_MEMORY);
	g_assert_true(s.features & PCIEFW_FEATURE_MEM_BURST);
}

/* Spec 12.1: the host's interrupt settings need minor >= 3 on both sides. */
static void test_interrupt_config_feature(void)
{
	struct pf_hello_params l, r;
	struct pf_session s;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_hello_defaults(&r, "r");
	g_assert_cmpuint(l.version_minor, >=, 3);
	g_assert_false(l.features & PCIEFW_FEATURE_INTERRUPT_CONFIG);
	l.features |= PCIEFW_FEATURE_INTERRUPT_CONFIG;
	r.features |= PCIEFW_FEATURE_INTERRUPT_CONFIG;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_true(s.features & PCIEFW_FEATURE_INTERRUPT_CONFIG);
	/* A 1.3 peer has it (1.4 added only bit 5). */
	r.version_minor = 3;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_true(s.features & PCIEFW_FEATURE_INTERRUPT_CONFIG);
	g_assert_cmpuint(s.version_minor, ==, 3);
	/* A 1.2 peer that sets bit 4 did not mean this feature. */
	r.version_minor = 2;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_false(s.features & PCIEFW_FEATURE_INTERRUPT_CONFIG);
	g_assert_cmpuint(s.version_minor, ==, 2);
}

static void test_features_and_payload(void)
{
	struct pf_hello_params l, r;
	struct pf_session s;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_hello_defaults(&r, "r\x01\xff");
	r.features = UINT64_MAX;            /* unknown bits are ignored */
	r.max_payload = 4096;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_cmphex(s.features, ==, PCIEFW_FEATURES_DEFAULT);
	g_assert_cmpuint(s.max_payload, ==, 4096);
	g_assert_cmpstr(s.peer_name, ==, "r??");    /* sanitized for logs */

	l.features = PCIEFW_FEATURE_MEM_BURST;
	r.features = PCIEFW_FEATURE_CONFIG_EXT | (1ull << 40);
	r.max_payload = UINT32_MAX;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_cmphex(s.features, ==, 0);
	g_assert_cmpuint(s.max_payload, ==, PCIEFW_DEFAULT_PAYLOAD);

	r.max_payload = PCIEFW_MIN_PAYLOAD - 1;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)),
			==, PF_ERR_INVALID);
}

static void test_wrong_magic(void)
{
	struct pf_hello_params l, r;
	struct pf_session s;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_hello_defaults(&r, "r");
	g_assert_cmpint(negotiate(&l, &r, 0x12345678, &s, err, sizeof(err)),
			==, PF_ERR_BAD_MAGIC);
	g_assert_nonnull(strstr(err, "0x12345678"));
	g_assert_cmpint(negotiate(&l, &r, 0, &s, err, sizeof(err)), ==, PF_ERR_BAD_MAGIC);
}

static void test_anything_before_hello(void)
{
	struct pf_hello_params l;
	struct pf_session s;
	struct pf_buf b;
	struct pf_codec c;
	PfMessage *m;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_buf_init(&b);
	pf_codec_init(&c);
	pf_put_mem_read(&b, 1, 0, 0, 4);
	g_assert_cmpint(pf_codec_decode(&c, b.data + 4, b.len - 4, &m, NULL, 0), ==, 0);
	g_assert_cmpint(pf_hello_negotiate(&l, m, &s, err, sizeof(err)), ==, PF_ERR_NO_HELLO);
	g_assert_nonnull(strstr(err, "expected hello, got mem_read"));
	pf_codec_free(&c);
	pf_buf_free(&b);
}

/*
 * Spec 11.7: binary register records need minor >= 4 on both sides and
 * the rings negotiated with them.
 */
static void test_reg_records_feature(void)
{
	const uint64_t both = PCIEFW_FEATURE_SHM_RINGS | PCIEFW_FEATURE_REG_RECORDS;
	struct pf_hello_params l, r;
	struct pf_session s;
	char err[256];

	pf_hello_defaults(&l, "l");
	pf_hello_defaults(&r, "r");
	g_assert_cmpuint(l.version_minor, ==, 4);
	g_assert_false(l.features & PCIEFW_FEATURE_REG_RECORDS);
	l.features |= both;
	r.features |= both;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_true(s.features & PCIEFW_FEATURE_REG_RECORDS);
	/* A 1.3 peer that sets bit 5 did not mean this feature. */
	r.version_minor = 3;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_false(s.features & PCIEFW_FEATURE_REG_RECORDS);
	g_assert_true(s.features & PCIEFW_FEATURE_SHM_RINGS);
	/* Without the rings it means nothing. */
	r.version_minor = 4;
	r.features &= ~PCIEFW_FEATURE_SHM_RINGS;
	g_assert_cmpint(negotiate(&l, &r, PCIEFW_MAGIC, &s, err, sizeof(err)), ==, PF_OK);
	g_assert_false(s.features & PCIEFW_FEATURE_REG_RECORDS);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/handshake/guest-memory-feature", test_guest_memory_feature);
	g_test_add_func("/handshake/interrupt-config-feature",
			test_interrupt_config_feature);
	g_test_add_func("/handshake/reg-records-feature", test_reg_records_feature);
	g_test_add_func("/handshake/version-matrix", test_matrix);
	g_test_add_func("/handshake/features-and-payload", test_features_and_payload);
	g_test_add_func("/handshake/wrong-magic", test_wrong_magic);
	g_test_add_func("/handshake/anything-before-hello", test_anything_before_hello);
	return g_test_run();
}
