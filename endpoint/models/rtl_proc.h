/*
 * The rtl model's simulator process (docs/hdl.md): start a simulation that
 * hdl/build.py built, with the RTL link (hdl/runtime/rtl_link.h) on fds
 * 3-5; wait for its hello; notice its exit; stop it.  The model
 * (rtl.c) speaks the link; this file only owns the process and the fds.
 */
#ifndef PCIEFW_RTL_PROC_H
#define PCIEFW_RTL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rtl_link.h"

struct rtl_proc {
	pid_t pid;              /* 0: none */
	bool exited;            /* it has, and was reaped (status below) */
	int pidfd;              /* readable once the process has exited; the
				 * signals go through it: its pid may be reused */
	int sim_bell, bridge_bell;
	void *base;             /* the link's memfd, mapped */
	size_t size;
	struct pf_rtl_link link;
	char name[200];         /* from its hello: what simulates what */
	unsigned bars;          /* from its hello: BARs with an AXI4-Lite port */
	int status;             /* waitpid status once reaped */
};

/*
 * Start DIR/run (with --wave WAVE unless WAVE is empty) with a fresh link
 * configured from @cfg, and wait up to @timeout_s for its hello.  On
 * failure returns -1 with @err set and nothing left running.
 */
int rtl_proc_start(struct rtl_proc *p, const char *dir, const char *wave,
		   const struct pf_rtl_shared *cfg, double timeout_s,
		   char *err, size_t errlen);

/*
 * Has the process exited?  Reaps it (sets status) when it has.  libev's
 * default loop reaps children itself (SIGCHLD): the model learns the
 * status from an ev_child watcher and says so with rtl_proc_exited().
 */
bool rtl_proc_reap(struct rtl_proc *p);
void rtl_proc_exited(struct rtl_proc *p, int status);

/* "exited with status N" or "was killed by signal N (NAME)". */
void rtl_proc_describe_exit(const struct rtl_proc *p, char *buf, size_t len);

/*
 * Ask it to finish (the waves closed), wait up to @grace_s, then kill;
 * reap it and release everything.  Safe on a stopped or never started one.
 */
void rtl_proc_stop(struct rtl_proc *p, double grace_s);

#endif /* PCIEFW_RTL_PROC_H */
