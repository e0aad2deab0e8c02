/*
 * Refusing a second host (spec 2.4): read its Hello, answer
 * Error{ERROR_BUSY}, close.  Reading the Hello first means the host's
 * write never meets a closed socket (EPIPE) and our close never resets a
 * connection with unread data (ECONNRESET), so the host reads the reason.
 */
#ifndef PCIEFW_BUSY_H
#define PCIEFW_BUSY_H

struct ev_loop;
struct pf_stream;

/* Refusals waiting for their host's Hello at once; more are refused at once. */
#define PF_BUSY_MAX_PENDING  8
/* How long a refusal waits for the Hello before answering anyway. */
#define PF_BUSY_WAIT_S       1.0

/*
 * Take over @fd (non-blocking, accepted) and its stream @st (its own
 * handshake, TLS, comes first) and refuse it with @text.
 */
void pf_busy_refuse(struct ev_loop *loop, int fd, struct pf_stream *st,
		    const char *text);
/* Answer and close every pending refusal now (the process is exiting). */
void pf_busy_shutdown(struct ev_loop *loop);

#endif /* PCIEFW_BUSY_H */
