/* A Linux TAP device as the NIC's wire (docs/nic.md section 7). */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend.h"
#include "device.h"
#include "log.h"

struct tap_net {
	struct pf_net net;
	int fd;
	ev_io rd;
	char ifname[IFNAMSIZ];
};

static void tap_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tap_net *t = w->data;
	uint8_t frame[65536];

	for (int i = 0; i < 64; i++) {
		ssize_t n = read(t->fd, frame, sizeof(frame));

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				pf_warn("tap %s: read: %s", t->ifname, strerror(errno));
			return;
		}
		pf_net_deliver(&t->net, frame, (size_t)n);
	}
}

static struct pf_net *tap_create(struct ev_loop *loop, struct pf_dev *dev,
				 char *err, size_t errlen)
{
	const char *name = pf_dev_option(dev, "ifname");
	struct tap_net *t = calloc(1, sizeof(*t));
	struct ifreq ifr = { 0 };

	if (!t)
		return NULL;
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
		free(t);
		return NULL;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (name && *name)
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, errlen, "cannot create TAP device '%s': %s (root or "
			 "CAP_NET_ADMIN needed)", name ? name : "", strerror(errno));
		close(t->fd);
		free(t);
		return NULL;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	pf_info("tap: using %s", t->ifname);
	ev_io_init(&t->rd, tap_read_cb, t->fd, EV_READ);
	t->rd.data = t;
	ev_io_start(loop, &t->rd);
	t->net.link_up = true;
	return &t->net;
}

static void tap_send(struct pf_net *n, const uint8_t *frame, size_t len)
{
	struct tap_net *t = (struct tap_net *)n;

	if (write(t->fd, frame, len) < 0 && errno != EAGAIN)
		pf_debug("tap %s: write: %s", t->ifname, strerror(errno));
}

static void tap_destroy(struct pf_net *n)
{
	struct tap_net *t = (struct tap_net *)n;

	ev_io_stop(n->loop, &t->rd);
	close(t->fd);
	free(t);
}

const struct pf_net_ops pf_net_tap_ops = {
	.name = "tap",
	.create = tap_create,
	.send = tap_send,
	.destroy = tap_destroy,
};
