/* Leveled logging to stderr for the endpoint and tools. */
#ifndef PCIEFW_LOG_H
#define PCIEFW_LOG_H

#include <stdarg.h>

enum pf_log_level { PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO, PF_LOG_DEBUG };

void pf_log_init(const char *prog, enum pf_log_level level);
/* Parse "error", "warn", "info" or "debug"; returns -1 if unknown. */
int pf_log_parse_level(const char *s);
int pf_log_enabled(enum pf_log_level level);
void pf_log(enum pf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pf_vlog(enum pf_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define pf_err(...)   pf_log(PF_LOG_ERROR, __VA_ARGS__)
#define pf_warn(...)  pf_log(PF_LOG_WARN, __VA_ARGS__)
#define pf_info(...)  pf_log(PF_LOG_INFO, __VA_ARGS__)
#define pf_debug(...) \
	do { if (pf_log_enabled(PF_LOG_DEBUG)) pf_log(PF_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* PCIEFW_LOG_H */
