/*
 * log.c - lines to stderr (or syslog), each in a single write(2) so that
 * parallel accounts never interleave mid-line.
 *
 * The progress line shares stderr with these lines.  It is drawn as
 * "\r\033[K" + text, without a newline, clipped to the terminal's width so
 * that "\r" always returns to its start.  In progress mode every ordinary
 * line starts with the same erase sequence, in the same write, so a line
 * replaces whatever progress line is on screen (this process's or, with
 * -j --progress, a sibling's) instead of being glued to its end.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "params.h"

#define LOG_ERASE	"\r\033[K"	/* to column 0, clear to end of line */

static int	 verbosity;
static bool	 use_syslog;
static bool	 progress_mode;		/* progress lines may be on stderr */
/* Ours is on screen now.  Atomic: a helper thread may log (fetcher/run.c's
 * local start) while the main thread does. */
static atomic_bool progress_shown;

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

static void __attribute__((format(printf, 4, 0)))
vlog(enum log_level level, const char *prefix, int errnum, const char *fmt,
    va_list ap)
{
	char line[4096];
	size_t len;
	int n, prio;
	bool erase;

	if (!log_enabled(level))
		return;
	erase = !use_syslog && (progress_mode || progress_shown);
	n = snprintf(line, sizeof(line), "%s%s", erase ? LOG_ERASE : "",
	    use_syslog ? "" : prefix);
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
	if (erase)
		progress_shown = false;
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
log_progress_mode(bool on)
{
	progress_mode = on;
}

void
log_progress(const char *text)
{
	char line[LOG_PROGRESS_MAX];
	struct winsize ws;
	size_t len, cols = 0;
	int n;

	if (isatty(STDERR_FILENO) &&
	    ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
		cols = ws.ws_col;
	n = snprintf(line, sizeof(line), LOG_ERASE "%s", text);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	/* Stay off the last column: a full row would wrap the cursor. */
	if (cols > 1 && len > strlen(LOG_ERASE) + cols - 1)
		len = strlen(LOG_ERASE) + cols - 1;
	write_all(line, len);
	progress_shown = true;
}

void
log_progress_clear(void)
{
	if (!progress_shown)
		return;
	write_all(LOG_ERASE, strlen(LOG_ERASE));
	progress_shown = false;
}

/*
 * Exit 70.  From a helper thread (fetcher/run.c's local start, the fsync
 * threads) without atexit handlers: OpenSSL's would clean up under the
 * main thread's feet, in the middle of a handshake, say.
 */
static void __attribute__((noreturn))
die(void)
{
	if (gettid() != getpid())
		_exit(70);
	exit(70);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "popfetch: fatal: ", saved, fmt, ap);
	va_end(ap);
	die();
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, "popfetch: fatal: ", 0, fmt, ap);
	va_end(ap);
	die();
}
