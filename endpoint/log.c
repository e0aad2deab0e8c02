/* Leveled logging; see log.h. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "pciefw";
static enum pf_log_level log_level = PF_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void pf_log_init(const char *prog, enum pf_log_level level)
{
	log_prog = prog;
	log_level = level;
}

int pf_log_parse_level(const char *s)
{
	for (int i = 0; i <= PF_LOG_DEBUG; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

int pf_log_enabled(enum pf_log_level level)
{
	return level <= log_level;
}

void pf_vlog(enum pf_log_level level, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char msg[1024], when[32];

	if (!pf_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* UTC, so lines compare with QEMU's and other machines' logs. */
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One fprintf per line keeps lines whole when stderr is shared. */
	fprintf(stderr, "%s[%s.%06ldZ] %s: %s\n", log_prog, when,
		ts.tv_nsec / 1000, level_names[level], msg);
}

void pf_log(enum pf_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pf_vlog(level, fmt, ap);
	va_end(ap);
}
