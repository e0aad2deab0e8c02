/* Classic pcap writer, nanosecond timestamps, LINKTYPE_ETHERNET. */
#include "pcap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define PCAP_MAGIC_NS 0xa1b23c4du
#define SNAPLEN       65535u

struct pf_pcap {
	FILE *f;
	bool failed;
};

struct pf_pcap *pf_pcap_create(const char *path, char *err, size_t errlen)
{
	struct pf_pcap *p = calloc(1, sizeof(*p));
	uint32_t hdr[6] = { PCAP_MAGIC_NS, 2 | 4 << 16, 0, 0, SNAPLEN, 1 };

	if (!p)
		return NULL;
	p->f = fopen(path, "wbe");
	if (!p->f || fwrite(hdr, 1, sizeof(hdr), p->f) != sizeof(hdr)) {
		snprintf(err, errlen, "cannot write pcap '%s': %s", path, strerror(errno));
		if (p->f)
			fclose(p->f);
		free(p);
		return NULL;
	}
	return p;
}

void pf_pcap_write(struct pf_pcap *p, const uint8_t *frame, size_t len)
{
	struct timespec ts;
	uint32_t rec[4];
	size_t cap = len < SNAPLEN ? len : SNAPLEN;

	if (!p || p->failed)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	rec[0] = (uint32_t)ts.tv_sec;
	rec[1] = (uint32_t)ts.tv_nsec;
	rec[2] = (uint32_t)cap;
	rec[3] = (uint32_t)len;
	if (fwrite(rec, 1, sizeof(rec), p->f) != sizeof(rec) ||
	    fwrite(frame, 1, cap, p->f) != cap) {
		pf_err("pcap capture stopped: %s", strerror(errno));
		p->failed = true;
	}
}

void pf_pcap_close(struct pf_pcap *p)
{
	if (!p)
		return;
	fclose(p->f);
	free(p);
}
