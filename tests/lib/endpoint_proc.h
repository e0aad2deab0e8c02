/*
 * Start and stop a real pciefw-endpoint process for a test: its own UNIX
 * socket in a fresh temporary directory (or an ephemeral loopback port),
 * stopped by PID even when the test fails.
 */
#ifndef PCIEFW_TEST_ENDPOINT_PROC_H
#define PCIEFW_TEST_ENDPOINT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct endpoint_proc {
	pid_t pid;
	char addr[256];      /* "unix:/tmp/.../ep.sock" or "tcp:127.0.0.1:PORT" */
	char dir[128];       /* temporary directory, removed by stop */
	char log[160];       /* its stderr */
};

/* @tcp: listen on 127.0.0.1:0 instead of a UNIX socket. NULL-terminated
 * @extra arguments are appended (e.g. "--device", "testdev"). */
void endpoint_start(struct endpoint_proc *ep, bool tcp, const char *const *extra);
/* SIGTERM, wait; returns the exit status (-1 if it had to be killed). */
int endpoint_stop(struct endpoint_proc *ep);
/* True while the process runs. */
bool endpoint_alive(struct endpoint_proc *ep);
/* Contents of its stderr so far (g_free it). */
char *endpoint_log(const struct endpoint_proc *ep);

#endif
