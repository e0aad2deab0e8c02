/*
 * The endpoint's device options: --device MODEL[,NAME=VALUE]... and
 * -O NAME=VALUE.  A parser of its own so that pciefw-endpoint and the
 * fuzzer (tests/fuzz/fuzz_device_options.c) run the same code.
 */
#ifndef PCIEFW_DEVICE_SPEC_H
#define PCIEFW_DEVICE_SPEC_H

#include <stddef.h>

#include "endpoint.h"

struct pf_device_spec {
	const struct pf_model *model;
	/* "NAME=VALUE" strings, --device ones first so that -O overrides. */
	char *opts[PF_MAX_MODEL_OPTS];
	size_t n_opts;
};

/*
 * Split @device ("MODEL[,OPTION]...", modified in place) into the model
 * and its options, append the @n_extra -O options, and look the model up.
 * Nothing is dropped: an empty model or option, more than
 * PF_MAX_MODEL_OPTS options or an unknown model is an error.  Whether
 * each option is NAME=VALUE with a NAME the model declares is checked by
 * pf_dev_create().  Returns 0, or -1 with @err set.
 */
int pf_device_spec_parse(char *device, char *const *extra, size_t n_extra,
			 struct pf_device_spec *spec, char *err, size_t errlen);

#endif
