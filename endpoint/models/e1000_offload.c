/*
 * The e1000's checksum offloads and TCP segmentation (docs/e1000.md 5.3,
 * 6.3 and 6.4; SDM 3.2.9, 3.3.5-3.3.7, 3.5).  Offsets come from the
 * guest's descriptors: every one is checked against the packet before it
 * is used, and a job that does not fit emits nothing (e1000 7).
 */
#include <string.h>

#include "e1000.h"
#include "net/checksum.h"

#define ETH_HLEN     14
#define VLAN_HLEN    4
#define ETH_P_8021Q  0x8100
#define ETH_P_IP     0x0800
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define TCP_FIN      0x01
#define TCP_PSH      0x08

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

/* A frame with its 802.1Q tag inserted after the addresses (SDM 3.3.3). */
static uint8_t tagged[E1K_FRAME_MAX + VLAN_HLEN];
/* One TSO segment being built. */
static uint8_t segment[E1K_FRAME_MAX];

static void emit_frame(const struct e1k_txjob *job, const uint8_t *f, size_t len,
		       e1k_emit_fn *emit, void *opaque)
{
	if (!job->vle || len < 12) {
		emit(opaque, f, len);
		return;
	}
	memcpy(tagged, f, 12);
	put_be16(tagged + 12, job->vet);
	put_be16(tagged + 14, job->vlan_tci);
	memcpy(tagged + 16, f + 12, len - 12);
	emit(opaque, tagged, len + VLAN_HLEN);
}

/*
 * Insert the checksum of bytes [start, end] (inclusive; @end 0 means the
 * end of the packet) at @at, as the SDM's CSS/CSO and context fields
 * say.  @add is added to the sum first (TSO's per-segment length).
 * Returns -1 if a field lies outside the packet.
 */
static int insert_csum(uint8_t *p, size_t len, size_t start, size_t end,
		       size_t at, uint32_t add, bool udp)
{
	uint32_t sum;
	uint16_t v;

	if (end == 0 || end >= len)
		end = len - 1;
	if (start > end || at + 2 > len)
		return -1;
	sum = pf_csum_add(add, p + start, end - start + 1);
	v = pf_csum_finish(sum);
	/* A UDP checksum of zero means "none": send all ones (RFC 768). */
	if (udp && v == 0)
		v = 0xffff;
	put_be16(p + at, v);
	return 0;
}

static int plain_offloads(const struct e1k_txjob *job, uint8_t *p, size_t len)
{
	const struct e1k_txctx *c = &job->ctx;

	if (job->legacy_ic && job->css < len &&
	    insert_csum(p, len, job->css, 0, job->cso, 0, false) < 0)
		return -1;
	if (job->ixsm && insert_csum(p, len, c->ipcss, c->ipcse, c->ipcso, 0, false) < 0)
		return -1;
	if (job->txsm && insert_csum(p, len, c->tucss, c->tucse, c->tucso, 0,
				     !(c->tucmd & TUCMD_TCP)) < 0)
		return -1;
	return 0;
}

/* The header TSO rewrites must lie inside HDRLEN (SDM 3.5). */
static bool tso_header_ok(const struct e1k_txctx *c, size_t len, bool ixsm)
{
	bool v4 = c->tucmd & TUCMD_IP;
	size_t ip_min = v4 ? 20 : 40;

	return c->tucmd & TUCMD_TCP && c->hdrlen < len && c->mss > 0 &&
	       (size_t)c->hdrlen + c->mss <= E1K_FRAME_MAX &&
	       (size_t)c->ipcss + ip_min <= c->hdrlen &&
	       (size_t)c->tucss + 20 <= c->hdrlen && c->tucss >= c->ipcss + ip_min &&
	       (size_t)c->tucso + 2 <= c->hdrlen &&
	       (!ixsm || (size_t)c->ipcso + 2 <= c->hdrlen);
}

static int tso(const struct e1k_txjob *job, const uint8_t *p, size_t len,
	       e1k_emit_fn *emit, void *opaque)
{
	const struct e1k_txctx *c = &job->ctx;
	size_t hdr = c->hdrlen, total = len - hdr;
	bool v4 = c->tucmd & TUCMD_IP;
	uint16_t ip_id = be16(p + c->ipcss + 4);
	uint32_t seq = be32(p + c->tucss + 4);
	int n = 0;

	for (size_t off = 0; off < total; off += c->mss, n++) {
		size_t chunk = total - off < c->mss ? total - off : c->mss;
		size_t flen = hdr + chunk;
		uint8_t *s = segment;

		memcpy(s, p, hdr);
		memcpy(s + hdr, p + hdr + off, chunk);
		if (v4) {
			put_be16(s + c->ipcss + 2, (uint16_t)(flen - c->ipcss));
			put_be16(s + c->ipcss + 4, (uint16_t)(ip_id + n));
		} else {
			put_be16(s + c->ipcss + 4, (uint16_t)(flen - c->ipcss - 40));
		}
		put_be32(s + c->tucss + 4, seq + (uint32_t)off);
		if (off + chunk < total)
			s[c->tucss + 13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (job->ixsm) {
			put_be16(s + c->ipcso, 0);
			if (insert_csum(s, hdr, c->ipcss, c->ipcse, c->ipcso, 0, false) < 0)
				return -1;
		}
		/* The driver seeded the pseudo-header sum without the length. */
		if (job->txsm && insert_csum(s, flen, c->tucss, 0, c->tucso,
					     (uint32_t)(flen - c->tucss), false) < 0)
			return -1;
		emit_frame(job, s, flen, emit, opaque);
	}
	return n;
}

int e1k_tx_finish(const struct e1k_txjob *job, uint8_t *pkt, size_t len,
		  e1k_emit_fn *emit, void *opaque)
{
	if (len < ETH_HLEN)
		return -1;
	if (job->tse) {
		if (!tso_header_ok(&job->ctx, len, job->ixsm) ||
		    len - job->ctx.hdrlen > E1K_TSO_MAX ||
		    (len - job->ctx.hdrlen + job->ctx.mss - 1) / job->ctx.mss > E1K_TSO_SEGS_MAX)
			return -1;
		return tso(job, pkt, len, emit, opaque);
	}
	if (len > E1K_FRAME_MAX || plain_offloads(job, pkt, len) < 0)
		return -1;
	emit_frame(job, pkt, len, emit, opaque);
	return 1;
}

/* ---- RX (SDM 3.2.9) ---- */

static void check_l4(const uint8_t *ip, size_t ihl, size_t l4len, uint8_t proto,
		     uint8_t *status, uint8_t *errors)
{
	const uint8_t *l4 = ip + ihl;
	uint32_t sum;

	if (proto == IP_PROTO_TCP ? l4len < 20 : l4len < 8)
		return;
	if (proto == IP_PROTO_UDP && be16(l4 + 6) == 0)
		return;                 /* no UDP checksum to check */
	sum = pf_csum_add(0, ip + 12, 8);
	sum += proto + (uint32_t)l4len;
	sum = pf_csum_add(sum, l4, l4len);
	*status |= RXD_TCPCS;
	if (pf_csum_fold(sum) != 0xffff)
		*errors |= RXE_TCPE;
}

void e1k_rx_checksum(const uint8_t *f, size_t len, uint32_t rxcsum,
		     uint8_t *status, uint8_t *errors, uint16_t *csum)
{
	size_t l3 = ETH_HLEN, pcss = rxcsum & 0xff, ihl, tot;
	const uint8_t *ip;

	*csum = pcss < len ? pf_csum_fold(pf_csum_add(0, f + pcss, len - pcss)) : 0;
	if (!(rxcsum & (RXCSUM_IPOFL | RXCSUM_TUOFL))) {
		*status |= RXD_IXSM;
		return;
	}
	if (len >= ETH_HLEN + VLAN_HLEN && be16(f + 12) == ETH_P_8021Q)
		l3 += VLAN_HLEN;
	/* IPv4 only: IPv6 checksums are not checked on this part (e1000 8). */
	if (len < l3 + 20 || be16(f + l3 - 2) != ETH_P_IP)
		return;
	ip = f + l3;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = be16(ip + 2);
	if (ip[0] >> 4 != 4 || ihl < 20 || tot < ihl || l3 + tot > len)
		return;
	if (rxcsum & RXCSUM_IPOFL) {
		*status |= RXD_IPCS;
		if (pf_csum_fold(pf_csum_add(0, ip, ihl)) != 0xffff)
			*errors |= RXE_IPE;
	}
	/* Fragments carry no whole TCP/UDP segment to check. */
	if (rxcsum & RXCSUM_TUOFL && !(be16(ip + 6) & 0x3fff) &&
	    (ip[9] == IP_PROTO_TCP || ip[9] == IP_PROTO_UDP))
		check_l4(ip, ihl, tot - ihl, ip[9], status, errors);
}
