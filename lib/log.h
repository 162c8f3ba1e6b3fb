/*
 * log.h - the OpenBSD log vocabulary (log_warn adds errno, log_warnx does not).
 *
 * Every line is written with a single write(2) so that lines from parallel
 * accounts (-j) never interleave mid-line.  Lines about an account start with
 * the account name; the caller includes it.
 *
 * Levels: errors and warnings always (unless --quiet hides warnings),
 * log_info for summaries (hidden by -q), log_debug for -v, log_trace for -vv.
 * With --syslog the same lines go to syslog (ident "popfetch", facility mail)
 * instead of stderr; when no syslog daemon listens on /dev/log, they go to
 * stderr after all, the first one preceded by a line saying so.
 */
#ifndef POPFETCH_LOG_H
#define POPFETCH_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE,
};

/*
 * verbosity: -1 for --quiet (errors only), 0 default (errors, warnings,
 * summaries), 1 for -v, 2 for -vv.  use_syslog: send lines to syslog.
 */
void	log_init(int verbosity, bool use_syslog);
int	log_verbosity(void);
bool	log_enabled(enum log_level level);

/* An error line: "popfetch: " + message.  log_err is the same, plus errno. */
void	log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The live progress line (always on stderr, never syslog).
 *
 * log_progress_mode(true): progress lines may be drawn on stderr, by this
 * process or by a sibling (-j); every ordinary line then starts with an
 * erase of the current terminal line, in the same write(2).
 * log_progress(text): draw `text` (no newline) over the current line, in
 * one write, clipped to the terminal width.  The next ordinary line or
 * log_progress_clear() erases it.
 * log_progress_clear(): erase our progress line if one is shown.
 */
void	log_progress_mode(bool on);
void	log_progress(const char *text);
void	log_progress_clear(void);

/* Our own bug or nothing can continue: print and exit 70. */
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
