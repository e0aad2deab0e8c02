/*
 * bench_mark(): a mark around the measured part of a guest benchmark, so
 * the host can sample the CPU time of QEMU and of the endpoint exactly
 * around it (bench/marked_guest.py, bench/cpu.py).
 *
 * With BENCH_MARKS=1 in the environment it prints "CPU-MARK WHAT" on
 * stderr (the console) and waits for the host's newline on stdin before
 * it returns: nothing runs in the guest while the host samples.  With
 * BENCH_MARKS=warmup it prints "CPU-MARK warmup" instead, which the host
 * answers without sampling: an unmeasured warm-up run goes through the
 * same exchange, so TCG has translated it before the measured runs.
 * Without BENCH_MARKS it does nothing and the program runs as it always
 * did.
 */
#ifndef PCIEFW_BENCH_MARK_H
#define PCIEFW_BENCH_MARK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bench_mark(const char *what)
{
	const char *mode = getenv("BENCH_MARKS");
	char line[64];

	if (!mode)
		return;
	if (!strcmp(mode, "warmup"))
		what = "warmup";
	else if (strcmp(mode, "1"))
		return;
	fflush(stdout);
	fprintf(stderr, "CPU-MARK %s\n", what);
	/* The host answers with one line; EOF (no host) goes on unmarked. */
	if (!fgets(line, sizeof(line), stdin))
		clearerr(stdin);
}

#endif
