/* Option value parsers (options.h) and the model-facing pf_opt_*(). */
#include <stdio.h>
#include <string.h>

#include "endpoint.h"
#include "options.h"
#include "size.h"

int pf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		 char *err, size_t errlen)
{
	uint64_t v;

	if (pf_parse_number(s, &v, err, errlen))
		return -1;
	if (v < min || v > max) {
		snprintf(err, errlen, "%s is outside %llu..%llu", s,
			 (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int pf_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };

	for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*out = !strcmp(s, yes[i]);
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not on/off, yes/no, true/false or 1/0",
		 s ? s : "");
	return -1;
}

int pf_parse_mac(const char *s, uint8_t mac[6], char *err, size_t errlen)
{
	const char *p = s;
	uint8_t m[6];

	for (int i = 0; p && i < 6; i++) {
		int hi = pf_hex_digit(p[0]), lo = hi < 0 ? -1 : pf_hex_digit(p[1]);

		if (lo < 0 || p[2] != (i < 5 ? ':' : '\0'))
			goto bad;
		m[i] = (uint8_t)(hi << 4 | lo);
		p += 3;
	}
	if (!p)
		goto bad;
	/* A multicast address cannot be a station address. */
	if (m[0] & 1) {
		snprintf(err, errlen, "%s is a multicast address", s);
		return -1;
	}
	memcpy(mac, m, 6);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a MAC address xx:xx:xx:xx:xx:xx",
		 s ? s : "");
	return -1;
}

/* ---- For models (device.h): errors name the option ---- */

static int opt_failed(struct pf_dev *dev, const char *name, const char *why)
{
	pf_dev_error(dev, "invalid %s: %s", name, why);
	return -1;
}

int pf_opt_u64(struct pf_dev *dev, const char *name, uint64_t min,
	       uint64_t max, uint64_t *out)
{
	char err[200];

	if (pf_parse_u64(pf_dev_option(dev, name), min, max, out, err, sizeof(err)))
		return opt_failed(dev, name, err);
	return 0;
}

int pf_opt_bool(struct pf_dev *dev, const char *name, bool *out)
{
	char err[200];

	if (pf_parse_bool(pf_dev_option(dev, name), out, err, sizeof(err)))
		return opt_failed(dev, name, err);
	return 0;
}

int pf_opt_mac(struct pf_dev *dev, const char *name, uint8_t mac[6])
{
	char err[200];

	if (pf_parse_mac(pf_dev_option(dev, name), mac, err, sizeof(err)))
		return opt_failed(dev, name, err);
	return 0;
}
