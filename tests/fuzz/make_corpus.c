/*
 * Write the fuzzer's seed corpus: one file per sample message (framed), and
 * one file with the whole sample stream.  Usage: make-corpus DIR
 */
#include <glib.h>
#include <stdio.h>

#include "frame.h"
#include "msgs.h"

int main(int argc, char **argv)
{
	struct pf_buf s;
	size_t off = 0;
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: make-corpus DIR\n");
		return 2;
	}
	pf_buf_init(&s);
	n = sample_stream(&s);
	for (int i = 0; i < n; i++) {
		uint32_t len = pf_frame_get_header(s.data + off);
		char *p = g_strdup_printf("%s/msg-%02d", argv[1], i);

		/* The largest samples would only slow the fuzzer down. */
		if (len < 4096 && !g_file_set_contents(p, (char *)s.data + off,
						       len + 4, NULL))
			return 1;
		g_free(p);
		off += 4 + len;
	}
	return 0;
}
