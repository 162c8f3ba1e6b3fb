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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <paths.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "params.h"

#define LOG_ERASE	"\r\033[K"	/* to column 0, clear to end of line */
#define NOSYSLOG_LINE	"popfetch: no syslog (" _PATH_LOG "): logging to stderr\n"

static int	 verbosity;
static bool	 use_syslog;
static bool	 progress_mode;		/* progress lines may be on stderr */
/* Ours is on screen now.  Atomic: a helper thread may log (fetcher/run.c's
 * local start) while the main thread does. */
static atomic_bool progress_shown;
/* --syslog found no syslog daemon: lines go to stderr, after one line that
 * says so, printed before the first of them.  Shared with the -j jobs
 * (forked later) so that it is printed once per run. */
static bool	 nosyslog;
static atomic_int *nosyslog_said;
static atomic_int nosyslog_said_here;

/* Whether a syslog daemon takes datagrams (or a stream) on _PATH_LOG, as
 * syslog(3) would connect. */
static bool
syslog_reachable(void)
{
	struct sockaddr_un sun;
	int fd, ok = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, _PATH_LOG, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	if (!ok && errno == EPROTOTYPE) {
		close(fd);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			return false;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	}
	close(fd);
	return ok;
}

void
log_init(int v, bool sys)
{
	verbosity = v;
	use_syslog = sys;
	if (use_syslog && !syslog_reachable()) {
		use_syslog = false;
		nosyslog = true;
		nosyslog_said = mmap(NULL, sizeof(*nosyslog_said),
		    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (nosyslog_said == MAP_FAILED)
			nosyslog_said = &nosyslog_said_here;	/* once per process */
		else
			atomic_init(nosyslog_said, 0);
	}
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

/*
 * Every line is escaped here, whole (the message and the errno text; not
 * our own prefixes and erase sequence), before it goes to stderr or
 * syslog: server text reaches these lines by many roads (the error
 * object, -vv trace lines of the status and header lines, unique-ids,
 * capabilities) and this is the one place all of them pass.  Control bytes
 * (C0, DEL, C1) and bytes that are not valid UTF-8 become "\xNN"; valid
 * UTF-8 stays readable.
 *
 * Backslashes are kept (PF_ESCAPE_KEEP_BACKSLASH), so this pass never
 * escapes twice: text escaped at its source (the error object's server
 * words, by pf_error_set_server(); previews, by pf_escape()) holds no byte
 * this pass changes, and "\x9b" there stays "\x9b", not "\\x9b".  The
 * price: in text that was not escaped at its source (the trace lines of
 * fetcher/pop3.c), a "\x9b" the server sent literally looks like the byte
 * 0x9B.  Such a line is still safe; a caller that needs it unambiguous
 * escapes at the source with pf_escape(), which doubles the backslash.
 */
static void __attribute__((format(printf, 4, 0)))
vlog(enum log_level level, const char *prefix, int errnum, const char *fmt,
    va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX];
	size_t len, mlen;
	int n, prio;
	bool erase;

	if (!log_enabled(level))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	mlen = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	if (errnum != 0 && mlen < sizeof(msg) - 1) {
		n = snprintf(msg + mlen, sizeof(msg) - mlen, ": %s",
		    strerror(errnum));
		if (n > 0)
			mlen += (size_t)n < sizeof(msg) - mlen ? (size_t)n :
			    sizeof(msg) - mlen - 1;
	}

	erase = !use_syslog && (progress_mode || progress_shown);
	n = snprintf(line, sizeof(line), "%s%s", erase ? LOG_ERASE : "",
	    use_syslog ? "" : prefix);
	len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	/* The escaped message, cut at a character if need be; room for '\n'. */
	if (len < LOG_LINE_MAX)
		len += pf_escape_ext(msg, mlen, line + len, LOG_LINE_MAX - len,
		    PF_ESCAPE_KEEP_BACKSLASH, NULL);
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
	if (nosyslog && atomic_exchange(nosyslog_said, 1) == 0) {
		if (erase)
			write_all(LOG_ERASE, strlen(LOG_ERASE));
		write_all(NOSYSLOG_LINE, strlen(NOSYSLOG_LINE));
	}
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

/* The text is escaped as in vlog() (the account name is the user's, but
 * the same rule everywhere is simpler to trust). */
void
log_progress(const char *text)
{
	char line[LOG_PROGRESS_MAX];
	struct winsize ws;
	size_t len, cols = 0;

	if (isatty(STDERR_FILENO) &&
	    ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
		cols = ws.ws_col;
	memcpy(line, LOG_ERASE, strlen(LOG_ERASE));
	len = strlen(LOG_ERASE) + pf_escape_ext(text, (size_t)-1,
	    line + strlen(LOG_ERASE), sizeof(line) - strlen(LOG_ERASE),
	    PF_ESCAPE_KEEP_BACKSLASH, NULL);
	/* Stay off the last column: a full row would wrap the cursor.  Cut
	 * before a UTF-8 character, never inside one (a byte is at most a
	 * column, so this may leave the line a little shorter than it could
	 * be). */
	if (cols > 1 && len > strlen(LOG_ERASE) + cols - 1) {
		len = strlen(LOG_ERASE) + cols - 1;
		while (len > strlen(LOG_ERASE) &&
		    ((unsigned char)line[len] & 0xc0) == 0x80)
			len--;
	}
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
