/* Socket helpers for the TCP and UNIX transports; see transport.h. */
#include "transport.h"

#include "buf.h"
#include "pciefw.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int pf_addr_parse(const char *s, struct pf_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "unix:", 5)) {
		const char *path = s + 5;

		if (!*path || strlen(path) >= sizeof(a->path)) {
			snprintf(err, errlen, "'%s': UNIX socket path empty or longer than %zu bytes",
				 s, sizeof(a->path) - 1);
			return -1;
		}
		a->kind = PF_ADDR_UNIX;
		strcpy(a->path, path);
		return 0;
	}
	if (!strncmp(s, "tcp:", 4)) {
		const char *host = s + 4, *colon, *end;
		size_t hlen;

		if (*host == '[') {
			end = strchr(host, ']');
			if (!end || end[1] != ':')
				goto bad;
			host++;
			hlen = (size_t)(end - host);
			colon = end + 1;
		} else {
			colon = strrchr(host, ':');
			if (!colon)
				goto bad;
			hlen = (size_t)(colon - host);
		}
		if (hlen == 0 || hlen >= sizeof(a->host))
			goto bad;
		char *stop;
		errno = 0;
		unsigned long port = strtoul(colon + 1, &stop, 10);
		if (errno || stop == colon + 1 || *stop || port > 65535 ||
		    colon[1] == '-' || colon[1] == '+')
			goto bad;
		a->kind = PF_ADDR_TCP;
		memcpy(a->host, host, hlen);
		a->host[hlen] = '\0';
		a->port = (uint16_t)port;
		return 0;
	}
bad:
	snprintf(err, errlen, "'%s': expected tcp:HOST:PORT or unix:PATH", s);
	return -1;
}

void pf_addr_format(const struct pf_addr *a, char *out, size_t outlen)
{
	if (a->kind == PF_ADDR_UNIX)
		snprintf(out, outlen, "unix:%s", a->path);
	else if (strchr(a->host, ':'))
		snprintf(out, outlen, "tcp:[%s]:%u", a->host, a->port);
	else
		snprintf(out, outlen, "tcp:%s:%u", a->host, a->port);
}

void pf_tune_socket(int fd)
{
	int one = 1;

	/* Fails harmlessly with EOPNOTSUPP on UNIX sockets. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int pf_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int unix_sockaddr(const struct pf_addr *a, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, a->path, strlen(a->path) + 1);
	return 0;
}

static struct addrinfo *tcp_resolve(const struct pf_addr *a, int passive,
				    char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char port[8];
	int r;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(port, sizeof(port), "%u", a->port);
	r = getaddrinfo(a->host, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "cannot resolve '%s': %s", a->host,
			 gai_strerror(r));
		return NULL;
	}
	return res;
}

/*
 * Who listens on the UNIX socket at @sun, if anyone: 1 and the listener's
 * pid in *@pid (0 if unknown) when a connection is accepted or the backlog
 * is full, 0 when nobody does (a stale file from a killed run), -1 when
 * that cannot be told (errno).
 */
static int unix_listener(const struct sockaddr_un *sun, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r, saved;

	*pid = 0;
	if (fd < 0)
		return -1;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	if (r == 0 && !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		*pid = cred.pid;
	close(fd);
	if (r == 0 || saved == EAGAIN)
		return 1;
	if (saved == ECONNREFUSED)
		return 0;
	errno = saved;
	return -1;
}

/*
 * Make @a's path free for bind(): refuse a path where a process listens
 * (EADDRINUSE) or that is no socket (EEXIST: never delete a user's file);
 * remove a socket nobody listens on.
 */
static int unix_claim_path(const struct pf_addr *a, const struct sockaddr_un *sun,
			   char *err, size_t errlen)
{
	struct stat st;
	pid_t pid;
	int r;

	if (lstat(a->path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot listen on unix:%s: the file exists and is "
			 "not a socket", a->path);
		errno = EEXIST;
		return -2;
	}
	r = unix_listener(sun, &pid);
	if (r < 0)
		return -1;
	if (r == 0)
		return unlink(a->path) < 0 && errno != ENOENT ? -1 : 0;
	if (pid)
		snprintf(err, errlen, "cannot listen on unix:%s: another process "
			 "(pid %d) is listening there; stop it or choose another "
			 "path", a->path, (int)pid);
	else
		snprintf(err, errlen, "cannot listen on unix:%s: another process "
			 "is listening there; stop it or choose another path",
			 a->path);
	errno = EADDRINUSE;
	return -2;
}

int pf_listen(const struct pf_addr *a, char *err, size_t errlen)
{
	int fd, one = 1;

	if (a->kind == PF_ADDR_UNIX) {
		struct sockaddr_un sun;
		int claimed;

		unix_sockaddr(a, &sun);
		claimed = unix_claim_path(a, &sun, err, errlen);
		if (claimed == -2)
			return -1;
		if (claimed < 0) {
			int saved = errno;

			snprintf(err, errlen, "cannot listen on unix:%s: %s", a->path,
				 strerror(saved));
			errno = saved;
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			goto sys;
		/*
		 * Owner only (0600): whoever connects drives the device and
		 * its DMA, so other local users must not (README, Security).
		 */
		mode_t mask = umask(0177);
		int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));

		umask(mask);
		if (r < 0 || listen(fd, 8) < 0) {
			int saved = errno;

			snprintf(err, errlen, "cannot listen on unix:%s: %s",
				 a->path, strerror(saved));
			close(fd);
			errno = saved;
			return -1;
		}
		return fd;
	}

	struct addrinfo *res = tcp_resolve(a, 1, err, errlen), *ai;
	if (!res)
		return -1;
	fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 8) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		int saved = errno;

		snprintf(err, errlen, "cannot listen on tcp:%s:%u: %s",
			 a->host, a->port, strerror(saved));
		errno = saved;
	}
	freeaddrinfo(res);
	return fd;
sys:
	snprintf(err, errlen, "socket: %s", strerror(errno));
	return -1;
}

int pf_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

int pf_connect(const struct pf_addr *a, char *err, size_t errlen)
{
	int fd;

	if (a->kind == PF_ADDR_UNIX) {
		struct sockaddr_un sun;

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto sys;
		unix_sockaddr(a, &sun);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			snprintf(err, errlen, "cannot connect to unix:%s: %s",
				 a->path, strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}

	struct addrinfo *res = tcp_resolve(a, 0, err, errlen), *ai;
	int saved = 0;
	if (!res)
		return -1;
	fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to tcp:%s:%u: %s",
			 a->host, a->port, strerror(saved ? saved : errno));
		return -1;
	}
	pf_tune_socket(fd);
	return fd;
sys:
	snprintf(err, errlen, "socket: %s", strerror(errno));
	return -1;
}

int pf_buf_drain(struct pf_buf *b, pf_send_fn send_fn, void *ctx)
{
	while (!pf_buf_empty(b)) {
		ssize_t n = send_fn(ctx, pf_buf_peek(b), pf_buf_used(b));

		if (n > 0) {
			pf_buf_consume(b, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return PF_AGAIN;
		if (n == 0)
			errno = EPIPE;
		return PF_ERR_IO;
	}
	return PF_OK;
}

static ssize_t socket_send(void *ctx, const void *buf, size_t len)
{
	return send(*(int *)ctx, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int pf_buf_send(int fd, struct pf_buf *b)
{
	return pf_buf_drain(b, socket_send, &fd);
}

int pf_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				poll(&pfd, 1, -1);
				continue;
			}
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
