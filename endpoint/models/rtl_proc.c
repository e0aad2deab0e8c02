/* The rtl model's simulator process; see rtl_proc.h. */
#include "rtl_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void release(struct rtl_proc *p)
{
	if (p->base)
		munmap(p->base, p->size);
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->sim_bell >= 0)
		close(p->sim_bell);
	if (p->bridge_bell >= 0)
		close(p->bridge_bell);
	p->base = NULL;
	memset(&p->link, 0, sizeof(p->link));
	p->pidfd = p->sim_bell = p->bridge_bell = -1;
	p->pid = 0;
	p->exited = false;
}

/* The child: the link on fds 3-5, stdout into the endpoint's log (stderr). */
static void __attribute__((noreturn)) exec_sim(int memfd, int sim_bell,
					       int bridge_bell, pid_t parent,
					       const char *run, const char *wave)
{
	const char *argv[] = { run, wave[0] ? "--wave" : NULL, wave, NULL };
	sigset_t none;

	/* The loop may block signals it takes by signalfd: exec keeps masks. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The simulation ends with the endpoint, however it ends. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	if (dup2(memfd, PF_RTL_FD_REGION) < 0 ||
	    dup2(sim_bell, PF_RTL_FD_SIM_BELL) < 0 ||
	    dup2(bridge_bell, PF_RTL_FD_BRIDGE_BELL) < 0 || dup2(2, 1) < 0)
		_exit(127);
	close_range(PF_RTL_FD_BRIDGE_BELL + 1, ~0u, 0);
	signal(SIGPIPE, SIG_DFL);
	execv(run, (char *const *)argv);
	fprintf(stderr, "rtl: cannot run %s: %s\n", run, strerror(errno));
	_exit(127);
}

/* Moved to 3-5 in the child, they must not be there already in us. */
static int fd_above(int fd)
{
	int moved;

	if (fd < 0 || fd > PF_RTL_FD_BRIDGE_BELL)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, PF_RTL_FD_BRIDGE_BELL + 1);
	close(fd);
	return moved;
}

static int make_link(struct rtl_proc *p, const struct pf_rtl_shared *cfg,
		     int *memfd, char *err, size_t errlen)
{
	struct pf_rtl_shared *sh;

	p->size = pf_rtl_link_size();
	*memfd = fd_above(memfd_create("pciefw-rtl-link", MFD_CLOEXEC));
	p->sim_bell = fd_above(eventfd(0, EFD_CLOEXEC));
	p->bridge_bell = fd_above(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (*memfd < 0 || p->sim_bell < 0 || p->bridge_bell < 0 ||
	    ftruncate(*memfd, (off_t)p->size)) {
		snprintf(err, errlen, "cannot make the RTL link: %s", strerror(errno));
		return -1;
	}
	p->base = mmap(NULL, p->size, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
	if (p->base == MAP_FAILED) {
		p->base = NULL;
		snprintf(err, errlen, "cannot map the RTL link: %s", strerror(errno));
		return -1;
	}
	if (pf_rtl_link_init(p->base, err, errlen))
		return -1;
	sh = p->base;
	sh->reset_cycles = cfg->reset_cycles;
	sh->watchdog_cycles = cfg->watchdog_cycles;
	sh->cycles_per_us = cfg->cycles_per_us;
	sh->no_host = 1;
	return pf_rtl_link_attach(&p->link, p->base, p->size, false, p->sim_bell,
				  err, errlen);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_hello(struct rtl_proc *p, double timeout_s, char *err, size_t errlen)
{
	double deadline = now_s() + timeout_s;
	struct pf_rtl_rec rec;
	char payload[PF_RTL_MAX_PAYLOAD + 1], why[160], how[80];

	for (;;) {
		struct pollfd pfd[2] = { { .fd = p->bridge_bell, .events = POLLIN },
					 { .fd = p->pidfd, .events = POLLIN } };
		int n = pf_rtl_recv(&p->link, &rec, payload, why, sizeof(why));
		double left = deadline - now_s();

		if (n < 0) {
			snprintf(err, errlen, "the simulation broke the link: %s", why);
			return -1;
		}
		if (n > 0 && rec.type == PF_RTL_HELLO) {
			size_t len = rec.len < sizeof(p->name) - 1 ? rec.len :
				   sizeof(p->name) - 1;

			memcpy(p->name, payload, len);
			p->name[len] = 0;
			p->bars = (unsigned)rec.data & 0x3f;
			return 0;
		}
		if (n > 0)
			continue;
		if (rtl_proc_reap(p)) {
			rtl_proc_describe_exit(p, how, sizeof(how));
			snprintf(err, errlen, "the simulation %s before it started "
				 "(what it printed is above)", how);
			return -1;
		}
		if (left <= 0) {
			snprintf(err, errlen, "the simulation did not start within %.0f s",
				 timeout_s);
			return -1;
		}
		if (poll(pfd, 2, (int)(left * 1000) + 1) > 0 && pfd[0].revents)
			pf_doorbell_drain(p->bridge_bell);
	}
}

int rtl_proc_start(struct rtl_proc *p, const char *dir, const char *wave,
		   const struct pf_rtl_shared *cfg, double timeout_s,
		   char *err, size_t errlen)
{
	char run[4096];
	int memfd = -1;
	pid_t parent = getpid();

	memset(p, 0, sizeof(*p));
	p->status = -1;
	p->pidfd = p->sim_bell = p->bridge_bell = -1;
	if ((size_t)snprintf(run, sizeof(run), "%s/run", dir) >= sizeof(run) ||
	    access(run, X_OK)) {
		snprintf(err, errlen, "no simulation in %s (no executable %s/run): "
			 "hdl/build.py builds one (docs/hdl.md)", dir, dir);
		return -1;
	}
	if (make_link(p, cfg, &memfd, err, errlen))
		goto fail;
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		snprintf(err, errlen, "cannot start the simulation: %s", strerror(errno));
		p->pid = 0;
		goto fail;
	}
	if (p->pid == 0)
		exec_sim(memfd, p->sim_bell, p->bridge_bell, parent, run, wave);
	close(memfd);
	memfd = -1;
	p->pidfd = (int)pidfd_open(p->pid, 0);
	if (p->pidfd < 0) {
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		goto fail;
	}
	if (wait_hello(p, timeout_s, err, errlen))
		goto fail;
	return 0;
fail:
	if (memfd >= 0)
		close(memfd);
	rtl_proc_stop(p, 0);
	return -1;
}

bool rtl_proc_reap(struct rtl_proc *p)
{
	pid_t r;

	if (!p->pid || p->exited)
		return true;
	r = waitpid(p->pid, &p->status, WNOHANG);
	if (r == 0 || (r < 0 && errno != ECHILD))
		return false;
	/* ECHILD: libev reaped it; its ev_child watcher has the status. */
	p->exited = true;
	return true;
}

void rtl_proc_exited(struct rtl_proc *p, int status)
{
	p->exited = true;
	p->status = status;
}

void rtl_proc_describe_exit(const struct rtl_proc *p, char *buf, size_t len)
{
	if (p->status == -1)
		snprintf(buf, len, "ended");
	else if (WIFSIGNALED(p->status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(p->status),
			 strsignal(WTERMSIG(p->status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(p->status));
}

void rtl_proc_stop(struct rtl_proc *p, double grace_s)
{
	struct pf_rtl_rec bye = { .type = PF_RTL_EXIT };

	if (p->pid && p->base && grace_s > 0 &&
	    pf_rtl_send(&p->link, &bye, NULL, 0) == 0) {
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

		pf_doorbell_ring(p->sim_bell);
		poll(&pfd, p->pidfd >= 0 ? 1 : 0, (int)(grace_s * 1000));
	}
	if (p->pid && !rtl_proc_reap(p)) {
		/* By its pidfd: a reaped pid may already be another process's. */
		if (p->pidfd < 0 || pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0) == 0)
			waitpid(p->pid, &p->status, 0);
		p->exited = true;
	}
	release(p);
}
