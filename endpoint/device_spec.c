/* --device MODEL[,NAME=VALUE]... and -O NAME=VALUE; see device_spec.h. */
#include "device_spec.h"

#include <stdio.h>
#include <string.h>

static int add_opt(struct pf_device_spec *spec, char *opt, const char *where,
		   char *err, size_t errlen)
{
	if (!*opt) {
		snprintf(err, errlen, "empty option in %s", where);
		return -1;
	}
	if (spec->n_opts == PF_MAX_MODEL_OPTS) {
		snprintf(err, errlen, "too many options for device %s (at most %d) "
			 "at '%.64s'", spec->model->name, PF_MAX_MODEL_OPTS, opt);
		return -1;
	}
	spec->opts[spec->n_opts++] = opt;
	return 0;
}

int pf_device_spec_parse(char *device, char *const *extra, size_t n_extra,
			 struct pf_device_spec *spec, char *err, size_t errlen)
{
	char *next = strchr(device, ',');

	memset(spec, 0, sizeof(*spec));
	/* Split by hand: strtok would skip empty fields and hide typos. */
	if (next)
		*next++ = '\0';
	if (!*device) {
		snprintf(err, errlen, "empty device model in --device");
		return -1;
	}
	spec->model = pf_model_find(device);
	if (!spec->model) {
		snprintf(err, errlen, "unknown device model '%.64s' "
			 "(see --list-devices)", device);
		return -1;
	}
	while (next) {
		char *opt = next;

		next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		if (add_opt(spec, opt, "--device (two commas in a row, or a "
			    "trailing comma)", err, errlen))
			return -1;
	}
	for (size_t i = 0; i < n_extra; i++)
		if (add_opt(spec, extra[i], "-O", err, errlen))
			return -1;
	return 0;
}
