/*
 * Packet backends of the NIC model (docs/nic.md section 7): where the
 * frames the guest sends go, and where the frames it receives come from.
 * One file per backend; they share this interface and the pcap capture.
 */
#ifndef PCIEFW_NET_BACKEND_H
#define PCIEFW_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct pf_dev;
struct pf_pcap;

/* A frame for the guest; the backend owns @frame only during the call. */
typedef void pf_net_rx_fn(void *opaque, const uint8_t *frame, size_t len);
typedef void pf_net_link_fn(void *opaque, bool up);

struct pf_net {
	const struct pf_net_ops *ops;
	struct ev_loop *loop;
	pf_net_rx_fn *rx;
	pf_net_link_fn *link;
	void *opaque;
	bool link_up;
	struct pf_pcap *pcap;
};

struct pf_net_ops {
	const char *name;
	/* Read options with pf_dev_option(); NULL with @err set on failure. */
	struct pf_net *(*create)(struct ev_loop *loop, struct pf_dev *dev,
				 char *err, size_t errlen);
	/* Send one frame; frames that cannot be sent now are dropped. */
	void (*send)(struct pf_net *n, const uint8_t *frame, size_t len);
	void (*destroy)(struct pf_net *n);
};

/*
 * Create backend @name ("slirp", "tap", "dgram", "stream"), capturing to
 * @pcap_path if not NULL.  Frames for the guest go to @rx.
 */
struct pf_net *pf_net_create(const char *name, struct ev_loop *loop,
			     struct pf_dev *dev, const char *pcap_path,
			     pf_net_rx_fn *rx, pf_net_link_fn *link, void *opaque,
			     char *err, size_t errlen);
void pf_net_send(struct pf_net *n, const uint8_t *frame, size_t len);
void pf_net_destroy(struct pf_net *n);

/* For backends: deliver a frame to the guest / report the link state. */
void pf_net_deliver(struct pf_net *n, const uint8_t *frame, size_t len);
void pf_net_set_link(struct pf_net *n, bool up);

/*
 * The options every model with a packet backend takes, for its
 * struct pf_model_option table (endpoint/device.h), so the models agree
 * on names, defaults and help.
 */
#define PF_NET_MODEL_OPTIONS \
	{ "backend", "packet backend: slirp, tap, dgram or stream", "slirp" }, \
	{ "hostfwd", "slirp: forwards, e.g. tcp::8080-:80 (several with ;)", "" }, \
	{ "host-loopback", "slirp: on lets the guest reach the host's 127.0.0.1 as 10.0.2.2", "off" }, \
	{ "ifname", "tap: interface name", "" }, \
	{ "local", "dgram: local address, udp:HOST:PORT or unix:PATH", "" }, \
	{ "remote", "dgram: peer address, udp:HOST:PORT or unix:PATH", "" }, \
	{ "listen", "stream: listen on tcp:HOST:PORT or unix:PATH", "" }, \
	{ "connect", "stream: connect to tcp:HOST:PORT or unix:PATH", "" }, \
	{ "pcap", "capture every frame to this pcap file", "" }

extern const struct pf_net_ops pf_net_slirp_ops;
extern const struct pf_net_ops pf_net_tap_ops;
extern const struct pf_net_ops pf_net_dgram_ops;
extern const struct pf_net_ops pf_net_stream_ops;

#endif
