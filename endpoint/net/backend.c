/* Backend selection and the parts every backend shares; see backend.h. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "pcap.h"

static const struct pf_net_ops *const backends[] = {
	&pf_net_slirp_ops,
	&pf_net_tap_ops,
	&pf_net_dgram_ops,
	&pf_net_stream_ops,
};

struct pf_net *pf_net_create(const char *name, struct ev_loop *loop,
			     struct pf_dev *dev, const char *pcap_path,
			     pf_net_rx_fn *rx, pf_net_link_fn *link, void *opaque,
			     char *err, size_t errlen)
{
	const struct pf_net_ops *ops = NULL;
	struct pf_pcap *pcap = NULL;
	struct pf_net *n;

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i]->name, name))
			ops = backends[i];
	if (!ops) {
		snprintf(err, errlen,
			 "unknown backend '%s' (slirp, tap, dgram or stream)", name);
		return NULL;
	}
	if (pcap_path && *pcap_path) {
		pcap = pf_pcap_create(pcap_path, err, errlen);
		if (!pcap)
			return NULL;
	}
	n = ops->create(loop, dev, err, errlen);
	if (!n) {
		pf_pcap_close(pcap);
		return NULL;
	}
	n->ops = ops;
	n->loop = loop;
	n->rx = rx;
	n->link = link;
	n->opaque = opaque;
	n->pcap = pcap;
	return n;
}

void pf_net_send(struct pf_net *n, const uint8_t *frame, size_t len)
{
	pf_pcap_write(n->pcap, frame, len);
	n->ops->send(n, frame, len);
}

void pf_net_deliver(struct pf_net *n, const uint8_t *frame, size_t len)
{
	pf_pcap_write(n->pcap, frame, len);
	n->rx(n->opaque, frame, len);
}

void pf_net_set_link(struct pf_net *n, bool up)
{
	if (n->link_up == up)
		return;
	n->link_up = up;
	if (n->link)
		n->link(n->opaque, up);
}

void pf_net_destroy(struct pf_net *n)
{
	struct pf_pcap *pcap;

	if (!n)
		return;
	pcap = n->pcap;
	n->ops->destroy(n);
	pf_pcap_close(pcap);
}
