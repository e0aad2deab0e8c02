/* Raw socket baseline; see raw_baseline.h. */
#include "raw_baseline.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Discard @len bytes. */
static int drain(int fd, size_t len)
{
	static uint8_t sink[65536];

	while (len) {
		size_t n = len < sizeof(sink) ? len : sizeof(sink);

		if (read_full(fd, sink, n))
			return -1;
		len -= n;
	}
	return 0;
}

static int send_zeros(int fd, size_t len)
{
	static const uint8_t zeros[65536];

	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);

		if (pf_write_all(fd, zeros, n))
			return -1;
		len -= n;
	}
	return 0;
}

static void serve(int fd)
{
	uint32_t hdr[4];

	/* Header: in, in_msgs, out, rounds. */
	while (read_full(fd, hdr, sizeof(hdr)) == 0) {
		for (uint32_t r = 0; r < hdr[3]; r++)
			if (drain(fd, hdr[0]) || send_zeros(fd, hdr[2]))
				_exit(1);
	}
	_exit(0);
}

int raw_start(struct raw_peer *p, bool tcp, char *err, size_t errlen)
{
	struct pf_addr a;
	int lfd;

	memset(p, 0, sizeof(p[0]));
	if (tcp) {
		pf_addr_parse("tcp:127.0.0.1:0", &a, err, errlen);
	} else {
		char spec[160];

		snprintf(p->path, sizeof(p->path), "/tmp/pciefw-bench-raw-%d.sock",
			 (int)getpid());
		snprintf(spec, sizeof(spec), "unix:%s", p->path);
		pf_addr_parse(spec, &a, err, errlen);
	}
	lfd = pf_listen(&a, err, errlen);
	if (lfd < 0)
		return -1;
	pf_set_nonblock(lfd, 0);
	if (tcp)
		a.port = (uint16_t)pf_bound_port(lfd);
	p->pid = fork();
	if (p->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(lfd);
		return -1;
	}
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(1);
		pf_tune_socket(fd);
		serve(fd);
	}
	close(lfd);
	p->fd = pf_connect(&a, err, errlen);
	if (p->fd < 0) {
		raw_stop(p);
		return -1;
	}
	return 0;
}

void raw_stop(struct raw_peer *p)
{
	if (p->fd > 0)
		close(p->fd);
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, NULL, 0);
	}
	if (p->path[0])
		unlink(p->path);
	p->fd = -1;
	p->pid = 0;
}

void bench_think(int64_t ns)
{
	int64_t end;

	if (ns <= 0)
		return;
	end = now_ns() + ns;
	while (now_ns() < end)
		;
}

int64_t raw_exchange(struct raw_peer *p, uint32_t in, uint32_t in_msgs,
		     uint32_t out, uint32_t rounds, int64_t think_ns,
		     int64_t *lat)
{
	uint32_t hdr[4] = { in, in_msgs, out, rounds };
	uint32_t msg = in_msgs ? in / in_msgs : in;
	uint8_t *buf = calloc(1, msg + out + 1);
	int64_t start;

	if (!buf || pf_write_all(p->fd, hdr, sizeof(hdr)))
		return -1;
	start = now_ns();
	for (uint32_t r = 0; r < rounds; r++) {
		int64_t t0;

		if (r)
			bench_think(think_ns);
		t0 = now_ns();

		/* One write per message, as the host library sends them. */
		for (uint32_t m = 0; m < in_msgs; m++)
			if (pf_write_all(p->fd, buf, msg))
				goto fail;
		if (in > msg * in_msgs && send_zeros(p->fd, in - msg * in_msgs))
			goto fail;
		if (drain(p->fd, out))
			goto fail;
		if (lat)
			lat[r] = now_ns() - t0;
	}
	free(buf);
	return now_ns() - start;
fail:
	free(buf);
	return -1;
}
