/*
 * libFuzzer target: a trace file (spec 6) as pciefw-trace and
 * pciefw-replay open it.  The input is the file's bytes, put in a memfd
 * and opened by its /proc/self/fd path, so pf_trace_open() reads it as
 * it reads any file.  Then, as pciefw-trace does, every record to the end
 * (message, session and malformed records), each message decoded,
 * validated and formatted; as a replay script, only message records; and
 * the whole file loaded by rp_script_load() (tools/replay/script.c), with
 * and without --allow-truncated.  Records and the script must be
 * consistent with the file (abort otherwise).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "replay.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool read_error(int ret)
{
	return ret == PF_ERR_TRUNCATED || ret == PF_ERR_CORRUPT ||
	       ret == PF_ERR_FORMAT || ret == PF_ERR_NOMEM;
}

/* One record as pciefw-trace shows it. */
static void show(struct pf_codec *codec, const struct pf_trace_record *rec,
		 size_t file_size)
{
	char line[2048], why[256];
	unsigned long long addr, len;
	PfMessage *m;
	uint32_t tag;
	int bar;

	check(rec->dir <= PF_DIR_TO_HOST && rec->type <= PF_REC_NOTE);
	check(rec->body_len < file_size);
	if (rec->type != PF_REC_MESSAGE) {
		/* Session text as it is; malformed bytes, the first 32 in hex. */
		char hex[3 * 32 + 1] = "";
		size_t h = 0;

		snprintf(line, sizeof(line), "%.*s", (int)rec->body_len,
			 (const char *)rec->body);
		for (size_t i = 0; i < rec->body_len && i < 32; i++)
			h += (size_t)snprintf(hex + h, sizeof(hex) - h, " %02x",
					      rec->body[i]);
		return;
	}
	if (pf_codec_decode(codec, rec->body, rec->body_len, &m, why, sizeof(why)))
		return;
	pf_msg_validate(m, PCIEFW_MAX_PAYLOAD, why, sizeof(why));
	pf_msg_format(m, line, sizeof(line));
	pf_msg_target(m, &bar, &addr, &len);
	pf_msg_tag(m, &tag);
	pf_msg_kind_name(m->body_case);
}

static void read_all(const char *path, bool all_types, size_t size)
{
	struct pf_trace_record rec;
	struct pf_trace_reader *r;
	struct pf_codec codec;
	uint64_t next = 1;          /* records are numbered from 1 */
	char err[512];
	int ret;

	r = pf_trace_open(path, err, sizeof(err));
	if (!r)
		return;
	if (all_types)
		pf_trace_want_all(r);
	pf_codec_init(&codec);
	while ((ret = pf_trace_next(r, &rec, err, sizeof(err))) == PF_OK) {
		/* Record numbers count every record, shown or skipped. */
		check(rec.index >= next && (!all_types || rec.index == next));
		next = rec.index + 1;
		check(all_types || rec.type == PF_REC_MESSAGE);
		show(&codec, &rec, size);
	}
	check(ret == PF_EOF || read_error(ret));
	pf_codec_free(&codec);
	pf_trace_close_reader(r);
}

/* A loaded script: sessions and request/completion links in range. */
static void load_script(const char *path, bool allow_truncated)
{
	struct rp_script s;
	char err[1024];

	if (rp_script_load(path, allow_truncated, &s, err, sizeof(err)))
		return;
	check(s.n_sess > 0 && s.skipped <= s.n);
	for (size_t i = 0; i < s.n_sess; i++)
		check(s.sess[i].first < s.sess[i].end && s.sess[i].end <= s.n);
	for (size_t i = 0; i < s.n; i++) {
		check(s.rec[i].req < (long)s.n && s.rec[i].cpl < (long)s.n);
		check(s.rec[i].req < 0 || s.rec[s.rec[i].req].cpl == (long)i);
	}
	rp_script_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("fuzz-trace", MFD_CLOEXEC);
		check(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	check(ftruncate(fd, 0) == 0);
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

		check(n > 0);
		off += (size_t)n;
	}
	read_all(path, true, size);
	read_all(path, false, size);
	load_script(path, false);
	load_script(path, true);
	return 0;
}
