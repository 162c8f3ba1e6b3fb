/*
 * log.c - lines to stderr (or syslog), each in a single write(2) so that
 * parallel accounts never interleave mid-line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int	 verbosity;
static bool	 use_syslog;

void
log_init(int v, bool sys)
{
	verbosity = v;
	use_syslog = sys;
	if (use_syslog)
		openlog("popfetch", LOG_PID, LOG_MAIL);
}

int
log_verbosity(void)
{
	return verbosity;
}

bool
log_enabled(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:	return true;
	case LOG_LEVEL_WARNING:	return verbosity >= 0;
	case LOG_LEVEL_INFO:	return verbosity >= 0;
	case LOG_LEVEL_DEBUG:	return verbosity >= 1;
	case LOG_LEVEL_TRACE:	return verbosity >= 2;
	}
	return false;
}

/* Write all of buf to stderr, retrying short writes and EINTR. */
static void
write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
vlog(enum log_level level, const char *prefix, int errnum, const char *fmt,
    va_list ap)
{
	char line[4096];
	size_t len;
	int n, prio;

	if (!log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "%s", use_syslog ? "" : prefix);
	len = n < 0 ? 0 : (size_t)n;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n;
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	if (errnum != 0) {
		n = snprintf(line + len, sizeof(line) - len, ": %s",
		    strerror(errnum));
		if (n > 0)
			len += (size_t)n;
		if (len >= sizeof(line) - 1)
			len = sizeof(line) - 2;
	}
	if (use_syslog) {
		switch (level) {
		case LOG_LEVEL_ERROR:	prio = LOG_ERR; break;
		case LOG_LEVEL_WARNING:	prio = LOG_WARNING; break;
		case LOG_LEVEL_INFO:	prio = LOG_INFO; break;
		default:		prio = LOG_DEBUG; break;
		}
		line[len] = '\0';
		syslog(prio, "%s", line);
		return;
	}
	line[len++] = '\n';
	write_all(line, len);
}

void
log_errx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "popfetch: ", 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARNING, "popfetch: ", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARNING, "popfetch: ", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, "", 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, "", 0, fmt, ap);
	va_end(ap);
}

void
log_trace(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_TRACE, "", 0, fmt, ap);
	va_end(ap);
}

void
log_raw(const char *text)
{
	write_all(text, strlen(text));
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "popfetch: fatal: ", saved, fmt, ap);
	va_end(ap);
	exit(70);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "popfetch: fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(70);
}
