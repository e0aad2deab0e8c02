/*
 * File descriptors passed with the bytes of a UNIX stream socket
 * (SCM_RIGHTS; docs/protocol.md 10.2 and 11.1): a receiver queues them in
 * arrival order until a message claims them, within a bound; a sender
 * attaches them to the first byte it sends.  Shared by both ends.
 */
#ifndef PCIEFW_FDPASS_H
#define PCIEFW_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pciefw.h"

struct pf_fd_queue {
	int fds[PCIEFW_MAX_PENDING_FDS];
	unsigned n;
	/*
	 * More arrived than the queue holds, or a message's fds were cut
	 * short by the kernel (MSG_CTRUNC): the connection is to be failed
	 * with ERROR_LIMIT (10.2).
	 */
	bool overflow;
};

/*
 * recvmsg() on @fd, non-blocking, keeping the fds that come with the bytes
 * in @q (NULL: they are closed).  Returns like recv().
 */
ssize_t pf_recv_fds(int fd, void *buf, size_t len, struct pf_fd_queue *q);

/*
 * send() of @buf with @fds (n_fds may be 0) as SCM_RIGHTS on its first
 * byte, non-blocking, no SIGPIPE.  Returns like send().
 */
ssize_t pf_send_fds(int fd, const void *buf, size_t len, const int *fds,
		    unsigned n_fds);

/* Move the @n oldest fds to @out; false (nothing moved) if fewer wait. */
bool pf_fd_queue_take(struct pf_fd_queue *q, int *out, unsigned n);
/* Close every fd waiting. */
void pf_fd_queue_clear(struct pf_fd_queue *q);

#endif /* PCIEFW_FDPASS_H */
