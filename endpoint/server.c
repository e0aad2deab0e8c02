/*
 * The top of the endpoint: listening sockets wired to host connections
 * (conn.h) served by the device (device.c).  It accepts, refuses a second
 * host (spec 2.4, busy.h), opens each host's stream (TLS on TCP, spec
 * 1.5) and holds it to the hello deadline (2.1).
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "busy.h"
#include "conn.h"
#include "log.h"
#include "stream.h"
#include "tls.h"

#define MAX_LISTENERS 8
/* What a closing host may have left unread when a new one arrives. */
#define HANGUP_READS 256

struct listener {
	ev_io io;
	int fd;
	struct pf_addr addr;
	struct pf_server *srv;
};

struct pf_server {
	struct ev_loop *loop;
	struct pf_server_config cfg;
	struct listener listeners[MAX_LISTENERS];
	unsigned n_listeners;
	struct pf_conn *conn;           /* the one host (spec 2.4), or NULL */
	/*
	 * The host's Hello (after the TLS handshake, if any) is due within
	 * the configured hello timeout of its connecting (spec 2.1): a silent
	 * host does not keep the device.
	 */
	ev_timer deadline;
	char conn_name[80];
	uint64_t n_connections;
	bool warned_plain_tcp;
};

/* TLS is for TCP; a UNIX socket is protected by its mode (spec 1.5). */
static bool uses_tls(const struct pf_server *srv, const struct listener *l)
{
	return srv->cfg.tls && l->addr.kind == PF_ADDR_TCP;
}

static struct pf_stream *open_stream(struct pf_server *srv,
				     const struct listener *l, int fd)
{
	char err[200];
	struct pf_stream *st;

	if (!uses_tls(srv, l))
		return pf_stream_socket(fd);
	st = pf_tls_stream(srv->cfg.tls, fd, err, sizeof(err));
	if (!st)
		pf_warn("refused a host: %s", err);
	return st;
}

/* One host per device: tell a second one why, then hang up (spec 2.4). */
static void refuse_busy(struct pf_server *srv, const struct listener *l, int fd)
{
	struct pf_stream *st = open_stream(srv, l, fd);
	char text[200];

	if (!st) {
		close(fd);
		return;
	}
	snprintf(text, sizeof(text),
		 "device %s is busy: it already serves a host (%s)",
		 srv->cfg.dev->model->name, srv->conn_name);
	pf_busy_refuse(srv->loop, fd, st, text);
}

/*
 * Only a live host makes the device busy (spec 2.4).  A host that closed
 * and connected again at once has its end of the old connection queued
 * behind what it sent last: read up to that end before judging the
 * newcomer.
 */
static bool busy(struct pf_server *srv)
{
	if (!srv->conn)
		return false;
	pf_conn_read(srv->conn, HANGUP_READS, true);
	if (pf_conn_dead(srv->conn))
		pf_conn_close(srv->conn);
	return srv->conn != NULL;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pf_server *srv = w->data;

	if (srv->conn)
		pf_conn_hello_overdue(srv->conn, srv->cfg.hello_timeout_s);
}

static void conn_closed(void *owner, struct pf_conn *c)
{
	struct pf_server *srv = owner;

	ev_timer_stop(srv->loop, &srv->deadline);
	if (srv->conn == c)
		srv->conn = NULL;
}

static const char *where(const struct listener *l)
{
	return l->addr.kind == PF_ADDR_UNIX ? "unix socket" : "tcp";
}

/* One trace file spans connections: mark where each begins. */
static void trace_session(struct pf_server *srv, const struct listener *l)
{
	char text[160];

	if (!srv->cfg.trace)
		return;
	snprintf(text, sizeof(text), "session %llu: host connected (%s, on %s)",
		 (unsigned long long)srv->n_connections, srv->conn_name, where(l));
	pf_trace_write_session(srv->cfg.trace, pf_now_ns(), text);
}

/*
 * Our Hello on this listener: guest memory needs fds, so UNIX (spec 10.1).
 * The rings (11.1) are the connection's to offer, as the socket allows.
 */
static struct pf_hello_params hello_for(const struct pf_server *srv,
					const struct listener *l)
{
	struct pf_hello_params h = srv->cfg.hello;

	if (l->addr.kind == PF_ADDR_UNIX && srv->cfg.guest_memory)
		h.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	return h;
}

/* The host on @fd, served by the device from its Hello on. */
static void serve(struct pf_server *srv, const struct listener *l, int fd)
{
	struct pf_conn_config cc = {
		.loop = srv->loop, .fd = fd, .name = srv->conn_name,
		.hello = hello_for(srv, l), .shm_rings = srv->cfg.shm_rings,
		.reg_records = srv->cfg.reg_records, .trace = srv->cfg.trace,
		.h = &pf_dev_host_handlers, .opaque = srv->cfg.dev,
		.closed = conn_closed, .owner = srv,
	};

	pf_tune_socket(fd);
	cc.st = open_stream(srv, l, fd);
	if (!cc.st) {
		close(fd);
		return;
	}
	snprintf(srv->conn_name, sizeof(srv->conn_name), "connection %llu",
		 (unsigned long long)++srv->n_connections);
	pf_info("%s: accepted on %s%s", srv->conn_name, where(l),
		uses_tls(srv, l) ? " (TLS)" : "");
	trace_session(srv, l);
	srv->conn = pf_conn_new(&cc);
	if (!srv->conn) {
		pf_warn("%s: out of memory", srv->conn_name);
		pf_stream_free(cc.st);
		close(fd);
		return;
	}
	ev_timer_set(&srv->deadline, srv->cfg.hello_timeout_s, 0);
	ev_timer_start(srv->loop, &srv->deadline);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct pf_server *srv = l->srv;
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			pf_warn("accept: %s", strerror(errno));
		return;
	}
	if (busy(srv))
		refuse_busy(srv, l, fd);
	else
		serve(srv, l, fd);
}

struct pf_server *pf_server_new(struct ev_loop *loop,
				const struct pf_server_config *cfg)
{
	struct pf_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->cfg = *cfg;
	ev_init(&srv->deadline, deadline_cb);
	srv->deadline.data = srv;
	return srv;
}

/* Bound to a loopback address, so only this machine can connect. */
static bool is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr)
			>> 24) == 127;
	if (ss.ss_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		return in6->sin6_addr.s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

int pf_server_listen(struct pf_server *srv, const struct pf_addr *addr,
		     char *err, size_t errlen)
{
	struct listener *l;
	struct pf_addr bound = *addr;
	char name[300];
	int fd;

	if (srv->n_listeners == MAX_LISTENERS) {
		snprintf(err, errlen, "at most %d --listen addresses", MAX_LISTENERS);
		return -1;
	}
	fd = pf_listen(addr, err, errlen);
	if (fd < 0)
		return -1;
	if (bound.kind == PF_ADDR_TCP)
		bound.port = (uint16_t)pf_bound_port(fd);
	l = &srv->listeners[srv->n_listeners++];
	l->fd = fd;
	l->addr = bound;
	l->srv = srv;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->io.data = l;
	ev_io_start(srv->loop, &l->io);
	pf_addr_format(&bound, name, sizeof(name));
	if (bound.kind == PF_ADDR_TCP && !srv->cfg.tls && !srv->warned_plain_tcp &&
	    !is_loopback(fd)) {
		srv->warned_plain_tcp = true;
		pf_warn("listening on %s without TLS: anyone who can reach it "
			"drives the device (and its DMA); use --tls-creds DIR "
			"(README, Security)", name);
	}
	/* Tests and scripts wait for this line to learn an ephemeral port. */
	printf("listening on %s\n", name);
	fflush(stdout);
	return 0;
}

void pf_server_shutdown(struct pf_server *srv, const char *why)
{
	if (srv->conn)
		pf_conn_goodbye(srv->conn, why);
	pf_busy_shutdown(srv->loop);
	for (unsigned i = 0; i < srv->n_listeners; i++) {
		struct listener *l = &srv->listeners[i];

		ev_io_stop(srv->loop, &l->io);
		close(l->fd);
		if (l->addr.kind == PF_ADDR_UNIX)
			unlink(l->addr.path);
	}
	srv->n_listeners = 0;
}

void pf_server_free(struct pf_server *srv)
{
	free(srv);
}
