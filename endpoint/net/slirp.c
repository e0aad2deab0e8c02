/*
 * User-mode networking with libslirp (docs/nic.md section 7): DHCP, DNS,
 * host port forwarding, and (host-loopback=on only) the host's loopback as
 * 10.0.2.2.
 *
 * libslirp wants a poll loop; we give it one on libev: before the loop
 * sleeps (ev_prepare) slirp lists its descriptors and we watch them, after
 * it wakes (ev_check) we poll them once and let slirp handle the events.
 */
#include <arpa/inet.h>
#include <ev.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "device.h"
#include "log.h"

/*
 * slirp's descriptors grow in steps of this; every one is polled, however
 * many connections the guest opens (RLIMIT_NOFILE bounds them).
 */
#define FDS_STEP 64

struct slirp_timer {
	ev_timer w;
	struct slirp_net *sn;
	SlirpTimerCb cb;
	void *cb_opaque;
};

struct slirp_net {
	struct pf_net net;
	Slirp *slirp;
	ev_prepare prepare;
	ev_check check;
	ev_timer wake;              /* slirp's own timeout */
	struct pollfd *fds;
	int n_fds, cap;
	ev_io **watch;              /* libev holds their addresses: never moved */
	int n_watch;
};

/* Room for one more descriptor; false when memory is out. */
static bool grow_fds(struct slirp_net *sn)
{
	int cap = sn->cap + FDS_STEP;
	struct pollfd *fds;
	ev_io **watch;

	fds = realloc(sn->fds, (size_t)cap * sizeof(*fds));
	if (!fds)
		return false;
	sn->fds = fds;
	watch = realloc(sn->watch, (size_t)cap * sizeof(*watch));
	if (!watch)
		return false;
	sn->watch = watch;
	for (int i = sn->cap; i < cap; i++) {
		watch[i] = calloc(1, sizeof(ev_io));
		if (!watch[i]) {
			sn->cap = i;
			return i > sn->n_fds;
		}
	}
	sn->cap = cap;
	return true;
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_net *sn = opaque;

	pf_net_deliver(&sn->net, buf, len);
	return (ssize_t)len;
}

static void guest_error(const char *msg, void *opaque)
{
	pf_warn("slirp: guest error: %s", msg);
}

static int64_t clock_get_ns(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct slirp_timer *t = w->data;

	t->cb(t->cb_opaque);
}

static void *timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->sn = opaque;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	ev_init(&t->w, timer_cb);
	t->w.data = t;
	return t;
}

static void timer_free(void *timer, void *opaque)
{
	struct slirp_timer *t = timer;

	ev_timer_stop(t->sn->net.loop, &t->w);
	free(t);
}

/* @expire is in milliseconds of clock_get_ns() time. */
static void timer_mod(void *timer, int64_t expire, void *opaque)
{
	struct slirp_timer *t = timer;
	double delay = (expire - clock_get_ns(NULL) / 1000000) / 1000.0;

	ev_timer_stop(t->sn->net.loop, &t->w);
	ev_timer_set(&t->w, delay > 0 ? delay : 0, 0);
	ev_timer_start(t->sn->net.loop, &t->w);
}

static void register_poll_fd(int fd, void *opaque) {}
static void unregister_poll_fd(int fd, void *opaque) {}
static void notify(void *opaque) {}

static const SlirpCb callbacks = {
	.send_packet = send_packet,
	.guest_error = guest_error,
	.clock_get_ns = clock_get_ns,
	.timer_new = timer_new,
	.timer_free = timer_free,
	.timer_mod = timer_mod,
	.register_poll_fd = register_poll_fd,
	.unregister_poll_fd = unregister_poll_fd,
	.notify = notify,
};

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_net *sn = opaque;
	struct pollfd *p;

	if (sn->n_fds == sn->cap && !grow_fds(sn)) {
		pf_warn("slirp: out of memory polling %d descriptors", sn->n_fds);
		return -1;
	}
	p = &sn->fds[sn->n_fds];
	p->fd = fd;
	p->events = (events & SLIRP_POLL_IN ? POLLIN : 0) |
		    (events & SLIRP_POLL_OUT ? POLLOUT : 0) |
		    (events & SLIRP_POLL_PRI ? POLLPRI : 0);
	p->revents = 0;
	return sn->n_fds++;
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_net *sn = opaque;
	short r;

	if (idx < 0 || idx >= sn->n_fds)
		return 0;
	r = sn->fds[idx].revents;
	return (r & POLLIN ? SLIRP_POLL_IN : 0) | (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
	       (r & POLLPRI ? SLIRP_POLL_PRI : 0) | (r & POLLERR ? SLIRP_POLL_ERR : 0) |
	       (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	/* Only wakes the loop; ev_check does the work. */
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents) {}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct slirp_net *sn = w->data;
	uint32_t timeout = UINT32_MAX;
	int i;

	sn->n_fds = 0;
	slirp_pollfds_fill(sn->slirp, &timeout, add_poll, sn);
	/* Keep watchers whose fd and events did not change (no epoll_ctl). */
	for (i = 0; i < sn->n_fds; i++) {
		int ev = (sn->fds[i].events & (POLLIN | POLLPRI) ? EV_READ : 0) |
			 (sn->fds[i].events & POLLOUT ? EV_WRITE : 0);
		ev_io *io = sn->watch[i];

		if (i < sn->n_watch && io->fd == sn->fds[i].fd &&
		    (io->events & (EV_READ | EV_WRITE)) == ev)
			continue;
		if (i < sn->n_watch)
			ev_io_stop(loop, io);
		ev_io_init(io, io_cb, sn->fds[i].fd, ev);
		if (ev)
			ev_io_start(loop, io);
	}
	for (; i < sn->n_watch; i++)
		ev_io_stop(loop, sn->watch[i]);
	sn->n_watch = sn->n_fds;
	ev_timer_stop(loop, &sn->wake);
	if (timeout != UINT32_MAX) {
		ev_timer_set(&sn->wake, timeout / 1000.0, 0);
		ev_timer_start(loop, &sn->wake);
	}
}

static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct slirp_net *sn = w->data;
	int r = sn->n_fds ? poll(sn->fds, (nfds_t)sn->n_fds, 0) : 0;

	slirp_pollfds_poll(sn->slirp, r < 0, get_revents, sn);
}

/* "tcp::8080-:80;udp:127.0.0.1:5353-:53" */
static int add_hostfwds(struct slirp_net *sn, const char *spec, char *err,
			size_t errlen)
{
	char *copy = strdup(spec), *save = NULL, *rule;
	int ret = 0;

	for (rule = strtok_r(copy, ";", &save); rule; rule = strtok_r(NULL, ";", &save)) {
		char proto[4], haddr[64] = "", gaddr[64] = "";
		unsigned hport, gport;
		struct in_addr h = { .s_addr = htonl(INADDR_LOOPBACK) }, g = { 0 };
		int udp;

		if (sscanf(rule, "%3[a-z]:%63[0-9.]:%u-%63[0-9.]:%u", proto, haddr,
			   &hport, gaddr, &gport) != 5 &&
		    sscanf(rule, "%3[a-z]::%u-%63[0-9.]:%u", proto, &hport, gaddr,
			   &gport) != 4 &&
		    sscanf(rule, "%3[a-z]::%u-:%u", proto, &hport, &gport) != 3 &&
		    sscanf(rule, "%3[a-z]:%63[0-9.]:%u-:%u", proto, haddr, &hport,
			   &gport) != 4) {
			snprintf(err, errlen, "hostfwd '%s': expected PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", rule);
			ret = -1;
			break;
		}
		udp = !strcmp(proto, "udp");
		if ((!udp && strcmp(proto, "tcp")) || hport > 65535 || gport > 65535 ||
		    (*haddr && !inet_aton(haddr, &h)) || (*gaddr && !inet_aton(gaddr, &g))) {
			snprintf(err, errlen, "hostfwd '%s': bad protocol, address or port", rule);
			ret = -1;
			break;
		}
		if (slirp_add_hostfwd(sn->slirp, udp, h, (int)hport, g, (int)gport) < 0) {
			snprintf(err, errlen, "hostfwd '%s': cannot bind host port %u",
				 rule, hport);
			ret = -1;
			break;
		}
		pf_info("slirp: forwarding %s %s:%u to guest port %u", proto,
			inet_ntoa(h), hport, gport);
	}
	free(copy);
	return ret;
}

static struct pf_net *slirp_create(struct ev_loop *loop, struct pf_dev *dev,
				   char *err, size_t errlen)
{
	struct slirp_net *sn = calloc(1, sizeof(*sn));
	SlirpConfig cfg = { .version = 1 };
	const char *hostfwd = pf_dev_option(dev, "hostfwd");
	const char *loopback = pf_dev_option(dev, "host-loopback");

	if (!sn)
		return NULL;
	if (strcmp(loopback, "on") && strcmp(loopback, "off")) {
		snprintf(err, errlen, "host-loopback='%s': expected on or off", loopback);
		free(sn);
		return NULL;
	}
	/*
	 * Off by default: the guest must not reach what listens on the host's
	 * 127.0.0.1 (other endpoints, other VMs' consoles) as 10.0.2.2.
	 */
	cfg.disable_host_loopback = strcmp(loopback, "on") != 0;
	sn->net.loop = loop;
	cfg.in_enabled = true;
	inet_aton("10.0.2.0", &cfg.vnetwork);
	inet_aton("255.255.255.0", &cfg.vnetmask);
	inet_aton("10.0.2.2", &cfg.vhost);
	inet_aton("10.0.2.15", &cfg.vdhcp_start);
	inet_aton("10.0.2.3", &cfg.vnameserver);
	cfg.vhostname = "pciefw";
	sn->slirp = slirp_new(&cfg, &callbacks, sn);
	if (!sn->slirp) {
		snprintf(err, errlen, "slirp_new failed");
		free(sn);
		return NULL;
	}
	if (hostfwd && *hostfwd && add_hostfwds(sn, hostfwd, err, errlen)) {
		slirp_cleanup(sn->slirp);
		free(sn);
		return NULL;
	}
	ev_prepare_init(&sn->prepare, prepare_cb);
	ev_check_init(&sn->check, check_cb);
	ev_init(&sn->wake, wake_cb);
	sn->prepare.data = sn->check.data = sn;
	ev_prepare_start(loop, &sn->prepare);
	ev_check_start(loop, &sn->check);
	sn->net.link_up = true;
	return &sn->net;
}

static void slirp_send(struct pf_net *n, const uint8_t *frame, size_t len)
{
	struct slirp_net *sn = (struct slirp_net *)n;

	slirp_input(sn->slirp, frame, (int)len);
}

static void slirp_destroy(struct pf_net *n)
{
	struct slirp_net *sn = (struct slirp_net *)n;

	for (int i = 0; i < sn->n_watch; i++)
		ev_io_stop(n->loop, sn->watch[i]);
	for (int i = 0; i < sn->cap; i++)
		free(sn->watch[i]);
	free(sn->watch);
	free(sn->fds);
	ev_prepare_stop(n->loop, &sn->prepare);
	ev_check_stop(n->loop, &sn->check);
	ev_timer_stop(n->loop, &sn->wake);
	slirp_cleanup(sn->slirp);
	free(sn);
}

const struct pf_net_ops pf_net_slirp_ops = {
	.name = "slirp",
	.create = slirp_create,
	.send = slirp_send,
	.destroy = slirp_destroy,
};
