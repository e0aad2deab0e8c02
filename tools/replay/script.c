/*
 * A trace loaded as a replay script: every record decoded, split into
 * sessions (one per connection), completions linked to their requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

bool rp_is_request(const PfMessage *m)
{
	uint32_t tag;

	return m->body_case != PCIEFW__MESSAGE__BODY_COMPLETION && pf_msg_tag(m, &tag);
}

/* Requests of one direction still waiting for their completion. */
struct outstanding {
	struct { uint32_t tag; size_t pos; } *v;
	size_t n, cap;
};

static int outstanding_add(struct outstanding *o, uint32_t tag, size_t pos)
{
	/* A tag used again (new connection, cancelled request): replace. */
	for (size_t i = o->n; i-- > 0;) {
		if (o->v[i].tag == tag) {
			o->v[i].pos = pos;
			return 0;
		}
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 64;
		void *p = realloc(o->v, cap * sizeof(*o->v));

		if (!p)
			return -1;
		o->v = p;
		o->cap = cap;
	}
	o->v[o->n].tag = tag;
	o->v[o->n].pos = pos;
	o->n++;
	return 0;
}

static long outstanding_take(struct outstanding *o, uint32_t tag)
{
	for (size_t i = o->n; i-- > 0;) {
		if (o->v[i].tag == tag) {
			long pos = (long)o->v[i].pos;

			o->v[i] = o->v[--o->n];
			return pos;
		}
	}
	return -1;
}

static int add_session(struct rp_script *s, size_t first)
{
	void *p = realloc(s->sess, (s->n_sess + 1) * sizeof(*s->sess));

	if (!p)
		return -1;
	s->sess = p;
	s->sess[s->n_sess].first = first;
	s->sess[s->n_sess].end = first;
	s->sess[s->n_sess].host_hello = -1;
	s->sess[s->n_sess].ep_hello = -1;
	s->sess[s->n_sess].desc = -1;
	s->n_sess++;
	return 0;
}

/*
 * Sessions: a new one starts at a Hello in a direction that already said
 * hello in the current one.  Completions are linked to their requests
 * within a session (tags are per connection).
 */
static int split_sessions(struct rp_script *s, char *err, size_t errlen)
{
	struct outstanding out[2] = { { 0 }, { 0 } };
	size_t i = 0;
	int ret = -1;

	while (i < s->n && s->rec[i].m->body_case != PCIEFW__MESSAGE__BODY_HELLO)
		i++;
	s->skipped = i;
	for (; i < s->n; i++) {
		struct rp_rec *r = &s->rec[i];
		struct rp_session *cur = s->n_sess ? &s->sess[s->n_sess - 1] : NULL;
		int d = r->dir == PF_DIR_TO_HOST;

		if (r->m->body_case == PCIEFW__MESSAGE__BODY_HELLO &&
		    (!cur || (d ? cur->ep_hello : cur->host_hello) >= 0)) {
			if (add_session(s, i))
				goto oom;
			cur = &s->sess[s->n_sess - 1];
			out[0].n = out[1].n = 0;
		}
		cur->end = i + 1;
		if (r->m->body_case == PCIEFW__MESSAGE__BODY_HELLO) {
			if (d)
				cur->ep_hello = (long)i;
			else
				cur->host_hello = (long)i;
		}
		if (r->m->body_case == PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION &&
		    d && cur->desc < 0)
			cur->desc = (long)i;
		if (r->m->body_case == PCIEFW__MESSAGE__BODY_COMPLETION) {
			long q = outstanding_take(&out[!d], r->m->completion->tag);

			r->req = q;
			if (q >= 0)
				s->rec[q].cpl = (long)i;
		} else if (rp_is_request(r->m)) {
			uint32_t tag = 0;

			pf_msg_tag(r->m, &tag);
			if (outstanding_add(&out[d], tag, i))
				goto oom;
		}
	}
	if (!s->n_sess) {
		snprintf(err, errlen, "%s", s->n ?
			 "the trace has no handshake (hello), so nothing to replay: "
			 "a rotated piece (FILE.1, ...) of a longer capture?" :
			 "the trace holds no messages");
		goto out;
	}
	ret = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	free(out[0].v);
	free(out[1].v);
	return ret;
}

int rp_script_load(const char *path, bool allow_truncated,
		   struct rp_script *s, char *err, size_t errlen)
{
	struct pf_trace_reader *r;
	struct pf_trace_record rec;
	size_t cap = 0;
	char why[512];
	int ret;

	memset(s, 0, sizeof(*s));
	r = pf_trace_open(path, why, sizeof(why));
	if (!r) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	/* Every record is counted, as pciefw-trace and Wireshark number them. */
	pf_trace_want_all(r);
	while ((ret = pf_trace_next(r, &rec, why, sizeof(why))) == PF_OK) {
		PfMessage *m;

		s->records = rec.index;
		if (rec.type != PF_REC_MESSAGE)
			continue;
		s->messages++;

		if (s->n == cap) {
			size_t ncap = cap ? 2 * cap : 1024;
			void *p = realloc(s->rec, ncap * sizeof(*s->rec));

			if (!p) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			s->rec = p;
			cap = ncap;
		}
		m = pciefw__message__unpack(NULL, rec.body_len, rec.body);
		if (!m || m->body_case == PCIEFW__MESSAGE__BODY__NOT_SET) {
			if (m)
				pciefw__message__free_unpacked(m, NULL);
			snprintf(err, errlen,
				 "%s: record %llu is not a pciefw message (corrupt trace)",
				 path, (unsigned long long)rec.index);
			goto fail;
		}
		/*
		 * A replay's connection never shares guest memory: the map
		 * and bus-master reports of the recording are not replayed,
		 * and the DMA recorded as copies arrives as messages (10.5).
		 * Nor does it move to the rings: their setup is the
		 * transport's, not the session's (11.6).
		 */
		if (m->body_case == PCIEFW__MESSAGE__BODY_MEMORY_MAP ||
		    m->body_case == PCIEFW__MESSAGE__BODY_BUS_MASTER ||
		    m->body_case == PCIEFW__MESSAGE__BODY_RING_SETUP ||
		    m->body_case == PCIEFW__MESSAGE__BODY_RING_READY) {
			pciefw__message__free_unpacked(m, NULL);
			continue;
		}
		if (!s->n)
			s->t0 = rec.ts_ns;
		memset(&s->rec[s->n], 0, sizeof(s->rec[s->n]));
		s->rec[s->n].index = rec.index;
		s->rec[s->n].ts_ns = rec.ts_ns;
		s->rec[s->n].dir = rec.dir;
		s->rec[s->n].m = m;
		s->rec[s->n].req = -1;
		s->rec[s->n].cpl = -1;
		s->n++;
	}
	if (ret == PF_ERR_TRUNCATED && allow_truncated) {
		s->truncated = true;
		snprintf(s->truncation, sizeof(s->truncation), "%s", why);
	} else if (ret != PF_EOF) {
		if (ret == PF_ERR_TRUNCATED)
			snprintf(err, errlen,
				 "%s: truncated trace: %s; it has %zu whole records "
				 "(--allow-truncated replays them)", path, why, s->n);
		else
			snprintf(err, errlen, "%s: %s: %s", path,
				 ret == PF_ERR_CORRUPT ? "corrupt trace" :
				 ret == PF_ERR_FORMAT ? "not a pciefw trace" :
				 "unreadable trace", why);
		goto fail;
	}
	pf_trace_close_reader(r);
	if (split_sessions(s, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", path, why);
		rp_script_free(s);
		return -1;
	}
	return 0;
fail:
	pf_trace_close_reader(r);
	rp_script_free(s);
	return -1;
}

void rp_script_free(struct rp_script *s)
{
	for (size_t i = 0; i < s->n; i++)
		pciefw__message__free_unpacked(s->rec[i].m, NULL);
	free(s->rec);
	free(s->sess);
	memset(s, 0, sizeof(*s));
}
