/*
 * libFuzzer target: pciefw-endpoint's device options.  The input's first
 * line is a --device MODEL[,NAME=VALUE]... argument, each further line an
 * -O NAME=VALUE argument (a NUL ends an argument, as in argv).  They go
 * through pf_device_spec_parse() as in main.c, which must lose nothing,
 * then pf_dev_create() with the registered model, whose NAME=VALUE checks
 * and the model's own option parsing run as in the daemon.  Models whose
 * create() has side effects are driven only as far as they are pure: the
 * nic and the e1000 open their packet backend (TAP devices, sockets, pcap
 * files), so the target adds backend=<none> after the input's options (the
 * last one wins): their create() parses the mac and stops at the backend
 * lookup.  A
 * model not listed below is parsed but not created.
 */
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device_spec.h"
#include "endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 40
#define NO_BACKEND "backend=fuzz-no-backend"

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* create() is pure (testdev), or pure once the backend is forced (NICs). */
static bool creatable(const struct pf_model *m, bool *force_backend)
{
	*force_backend = !strcmp(m->name, "nic") || !strcmp(m->name, "e1000");
	return *force_backend || !strcmp(m->name, "testdev");
}

/* The parsed --device options, joined again, are the argument given. */
static void check_lossless(const struct pf_device_spec *spec, size_t n_dev,
			   const char *given)
{
	size_t len = strlen(spec->model->name);

	check(!strncmp(given, spec->model->name, len));
	for (size_t i = 0; i < n_dev; i++) {
		size_t olen = strlen(spec->opts[i]);

		check(given[len] == ',' && !strncmp(given + len + 1, spec->opts[i], olen));
		len += 1 + olen;
	}
	check(!given[len]);
}

static void create(const struct pf_device_spec *spec)
{
	static struct ev_loop *loop;
	char *opts[PF_MAX_MODEL_OPTS + 1];
	size_t n = spec->n_opts;
	bool force;
	struct pf_dev *dev;
	char err[300] = "";

	if (!creatable(spec->model, &force))
		return;
	if (!loop)
		loop = ev_loop_new(EVFLAG_AUTO);
	memcpy(opts, spec->opts, n * sizeof(opts[0]));
	if (force)
		opts[n++] = (char *)NO_BACKEND;
	dev = pf_dev_create(spec->model, loop, opts, n, err, sizeof(err));
	if (!dev) {
		check(err[0]);
		return;
	}
	check(!force);
	for (const struct pf_model_option *o = spec->model->options; o && o->name; o++)
		check(pf_dev_option(dev, o->name) != NULL);
	pf_dev_destroy(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *args[MAX_ARGS], *given;
	size_t n_args = 0, n_dev = 0;
	struct pf_device_spec spec;
	char err[300];

	/* Each argument in its own allocation, so ASan sees every overrun. */
	for (size_t off = 0; off <= size && n_args < MAX_ARGS;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - data) - off : size - off;

		args[n_args] = strndup((const char *)data + off, len);
		check(args[n_args] != NULL);
		n_args++;
		off += len + 1;
	}
	given = strdup(args[0]);
	check(given != NULL);
	for (const char *p = given; *p; p++)
		n_dev += *p == ',';
	if (!pf_device_spec_parse(args[0], args + 1, n_args - 1, &spec, err,
				  sizeof(err))) {
		check(spec.model == pf_model_find(spec.model->name));
		check(spec.n_opts == n_dev + n_args - 1);
		check_lossless(&spec, n_dev, given);
		for (size_t i = 0; i < spec.n_opts; i++)
			check(spec.opts[i][0] != '\0');
		create(&spec);
	} else {
		check(err[0]);
	}
	free(given);
	for (size_t i = 0; i < n_args; i++)
		free(args[i]);
	return 0;
}
