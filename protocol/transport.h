/*
 * Socket addresses and connections for the two transports of spec 1.1:
 * "tcp:HOST:PORT" and "unix:PATH".
 */
#ifndef PCIEFW_TRANSPORT_H
#define PCIEFW_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include <sys/un.h>

enum pf_addr_kind { PF_ADDR_TCP, PF_ADDR_UNIX };

struct pf_addr {
	enum pf_addr_kind kind;
	char host[256];                              /* TCP */
	uint16_t port;                               /* TCP; 0 = ephemeral */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* UNIX */
};

/*
 * Parse "tcp:HOST:PORT", "tcp:[V6ADDR]:PORT" or "unix:PATH".
 * Returns 0, or -1 with a reason in @err.
 */
int pf_addr_parse(const char *s, struct pf_addr *a, char *err, size_t errlen);
/* Human-readable form, e.g. for logs. */
void pf_addr_format(const struct pf_addr *a, char *out, size_t outlen);

/*
 * Listening socket (non-blocking, close-on-exec), or -1 with @err set and
 * errno saying why: EADDRINUSE when another process listens there (a UNIX
 * path where one answers, a TCP port in use).  A UNIX socket file nobody
 * listens on (left by a killed run) is removed first; a path that exists
 * and is not a socket is refused (EEXIST).
 */
int pf_listen(const struct pf_addr *a, char *err, size_t errlen);
/* The port a TCP listening socket is bound to (for port 0). */
int pf_bound_port(int fd);
/* Blocking connect; the socket is tuned with pf_tune_socket(). */
int pf_connect(const struct pf_addr *a, char *err, size_t errlen);
/* TCP_NODELAY for TCP: requests are small and latency-bound (spec 5). */
void pf_tune_socket(int fd);
int pf_set_nonblock(int fd, int on);

/*
 * Send what the socket takes of @b without blocking, consuming it.
 * Returns PF_OK when @b is empty, PF_AGAIN when the socket is full (the
 * caller waits for writability, and keeps reading meanwhile: spec 5.3), or
 * PF_ERR_IO with errno set (EPIPE when the peer closed).
 */
struct pf_buf;
int pf_buf_send(int fd, struct pf_buf *b);
/*
 * The same over any sender that behaves like send() on a non-blocking
 * socket (bytes sent, or -1 with errno).
 */
typedef ssize_t (*pf_send_fn)(void *ctx, const void *buf, size_t len);
int pf_buf_drain(struct pf_buf *b, pf_send_fn send_fn, void *ctx);

/* Write all of @len bytes, polling on EAGAIN.  Returns 0 or -1 (errno). */
int pf_write_all(int fd, const void *buf, size_t len);

#endif /* PCIEFW_TRANSPORT_H */
