/* The endpoint's listeners and its one host connection (spec 1, 2). */
#ifndef PCIEFW_SERVER_H
#define PCIEFW_SERVER_H

#include <stddef.h>

#include "endpoint.h"
#include "transport.h"
#include "trace.h"

struct pf_server;
struct pf_tls;

struct pf_server_config {
	struct pf_dev *dev;
	struct pf_hello_params hello;
	/* Offer PCIEFW_FEATURE_GUEST_MEMORY on UNIX sockets (spec 10.1). */
	bool guest_memory;
	/* Offer PCIEFW_FEATURE_SHM_RINGS on UNIX sockets (spec 11.1). */
	bool shm_rings;
	/* ... and PCIEFW_FEATURE_REG_RECORDS with them (spec 11.7). */
	bool reg_records;
	struct pf_trace_writer *trace;  /* may be NULL */
	struct pf_tls *tls;             /* NULL: plain connections */
	/* How long a host has to send its Hello, TLS included (spec 2.1). */
	double hello_timeout_s;
};

#define PF_HELLO_TIMEOUT_S 10.0

struct pf_server *pf_server_new(struct ev_loop *loop,
				const struct pf_server_config *cfg);
/* Listen on @addr; prints "listening on ADDR" on stdout. Returns 0 or -1. */
int pf_server_listen(struct pf_server *srv, const struct pf_addr *addr,
		     char *err, size_t errlen);
/* Say goodbye to the host (if any), close everything. */
void pf_server_shutdown(struct pf_server *srv, const char *why);
void pf_server_free(struct pf_server *srv);

#endif /* PCIEFW_SERVER_H */
