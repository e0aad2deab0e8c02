/*
 * Parsers for option values: integers with range and K/M/G suffixes,
 * booleans, MAC addresses.  Pure functions on strings, so the endpoint's
 * command line and tests can use them too; models use the pf_opt_*()
 * wrappers of device.h, which name the option in the error.
 */
#ifndef PCIEFW_OPTIONS_H
#define PCIEFW_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An unsigned integer: decimal, or hex with 0x, optionally followed by one
 * binary suffix K (2^10), M (2^20) or G (2^30), upper or lower case.  No
 * sign, no spaces, nothing after the suffix.  A value that overflows 64
 * bits or lies outside [@min, @max] is refused.  Returns 0, or -1 with a
 * reason in @err.
 */
int pf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		 char *err, size_t errlen);
/* on/off, yes/no, true/false, 1/0 (lower case).  Returns 0 or -1. */
int pf_parse_bool(const char *s, bool *out, char *err, size_t errlen);
/* A unicast MAC address, xx:xx:xx:xx:xx:xx in hex.  Returns 0 or -1. */
int pf_parse_mac(const char *s, uint8_t mac[6], char *err, size_t errlen);

#endif /* PCIEFW_OPTIONS_H */
