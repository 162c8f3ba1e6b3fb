/*
 * command.c - a shell command line run as a child process (command.h).
 *
 * The command runs as `/bin/sh -c LINE` in its own process group, so a
 * timeout can kill everything it started (a pipeline, a helper...) with
 * one kill(-pgid).  One poll(2) loop writes its input and reads its stdout
 * and stderr, so neither side can wait for the other whatever the sizes.
 * Everything it prints is consumed while it runs, kept or dropped, so that
 * it never blocks or dies of SIGPIPE on a full pipe.  The result is taken
 * when the shell exits, not at EOF on the pipes, which a background
 * process it leaves behind can hold off indefinitely; such a process is
 * left alone.
 *
 * The child is started with posix_spawn(3) where the C library can close
 * every other descriptor in it (posix_spawn_file_actions_addclosefrom_np,
 * glibc >= 2.34; configure checks): glibc's clones with CLONE_VM |
 * CLONE_VFORK, so none of our page tables are copied, which fork(2) of a
 * process with a few threads and megabytes of heap costs per command (about
 * 0.4 ms of CPU each, once per filtered message).  Elsewhere, fork and
 * exec.  Both give the child the same state: its own process group, an
 * empty signal mask, caught signals and SIGPIPE at their defaults (glibc's
 * posix_spawn resets caught ones itself, POSIX_SPAWN_SETSIGDEF the rest),
 * the pipes or /dev/null as stdin, stdout and stderr and nothing else
 * open.  posix_spawn also reports a failed execve of /bin/sh, which fork
 * and exec can only make the child's exit status 127.
 *
 * Threads: the descriptors are made close-on-exec, so a command started by
 * another thread (or by anyone's fork and exec) never holds this one's
 * pipes; everything the child needs (argv, envp, descriptors) is ready
 * before it starts, and between fork and exec the child makes only
 * async-signal-safe calls.  Every signal is blocked across fork (glibc's
 * posix_spawn does the same), so no handler of ours can run in the child;
 * the child puts caught signals and SIGPIPE back to their defaults, then
 * unblocks everything.  SIGPIPE is blocked in the calling thread while the
 * command runs; one that writing to its stdin raised is taken off again
 * (sigtimedwait) before returning.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
#include <spawn.h>
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "escape.h"
#include "log.h"
#include "params.h"
#include "xmalloc.h"

extern char **environ;

/* An escaped stderr line and its prefix fit one log line. */
_Static_assert(PF_ESCAPE_SIZE(COMMAND_ERR_LINE_MAX) + 256 <= LOG_LINE_MAX,
    "COMMAND_ERR_LINE_MAX too long for LOG_LINE_MAX");

/*
 * Signals popfetch itself sets to SIG_IGN (fetcher/cli.c), which exec would
 * pass on: the command gets them at their defaults, as if started from a
 * shell.  Signals ignored by whoever started popfetch (nohup's SIGHUP) stay
 * ignored.
 */
static const int reset_ignored[] = { SIGPIPE };

/* One run: the parent's side. */
struct run {
	const struct command *c;
	pid_t		 pid;		/* -1 once reaped */
	int		 in_fd;		/* our ends of the pipes, or -1 */
	int		 out_fd;
	int		 err_fd;
	int		 pidfd;		/* readable once the shell exits, or -1 */
	struct timespec	 deadline;	/* CLOCK_MONOTONIC; unused when !timeout */
	bool		 epipe;		/* a write raised SIGPIPE */

	/* input: piece `piece`, at `off` (buffer) or file offset `off` */
	size_t		 piece;
	off_t		 off;
	char		*chunk;		/* what pread gave, not written yet */
	size_t		 chunk_len, chunk_done;

	/* stdout: out[out_len], room for out_cap (+ NUL) */
	char		*out;
	size_t		 out_len, out_cap;
	char		*scratch;	/* COMMAND_IO_BUF: what is dropped */

	/* stderr: the line so far */
	char		 line[COMMAND_ERR_LINE_MAX];
	size_t		 line_len;
	bool		 line_cut;	/* more of this line was dropped */
	size_t		 lines_logged, lines_dropped;
};

/* Is errno a shortage that may pass (75), rather than a local fault (74)? */
static enum pf_fail
errno_category(int e)
{
	return e == EAGAIN || e == EMFILE || e == ENFILE || e == ENOMEM ||
	    e == ENOBUFS ? PF_FAIL_TEMP : PF_FAIL_IO;
}

/* Milliseconds left until the deadline (-1: none; 0: passed). */
static int
ms_left(const struct timespec *deadline, unsigned timeout_s)
{
	struct timespec now;
	long long ms;

	if (timeout_s == 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms + 1 > INT_MAX ? INT_MAX : (int)(ms + 1);
}

/* `timeout` seconds from now. */
static void
arm_deadline(struct run *r)
{
	clock_gettime(CLOCK_MONOTONIC, &r->deadline);
	r->deadline.tv_sec += (time_t)r->c->timeout;
}

static void
close_fd(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

/* Move fd above stdin/stdout/stderr so the child's dup2s cannot clash. */
static int
fd_above_stdio(int fd)
{
	int nfd;

	if (fd > STDERR_FILENO)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return nfd;
}

/*
 * A pipe, both ends close-on-exec and the child's end above stdio; ours is
 * non-blocking.  child_reads: the child reads it (its stdin).
 */
static int
make_pipe(int *ours, int *theirs, bool child_reads, struct pf_error *err)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		return pf_error_set_errno(err, errno_category(errno),
		    "cannot run it: pipe");
	*ours = p[child_reads ? 1 : 0];
	*theirs = fd_above_stdio(p[child_reads ? 0 : 1]);
	if (*theirs == -1 ||
	    fcntl(*ours, F_SETFL, fcntl(*ours, F_GETFL) | O_NONBLOCK) == -1)
		return pf_error_set_errno(err, errno_category(errno),
		    "cannot run it: fcntl");
	return 0;
}

static int
open_devnull(int *fd, int flags, struct pf_error *err)
{
	if ((*fd = open("/dev/null", flags | O_CLOEXEC)) == -1 ||
	    (*fd = fd_above_stdio(*fd)) == -1)
		return pf_error_set_errno(err, errno_category(errno),
		    "cannot run it: open(/dev/null)");
	return 0;
}

/* Is `entry` ("NAME=value") the variable named as in `name_eq` ("NAME=...")? */
static bool
same_name(const char *entry, const char *name_eq)
{
	size_t n = strcspn(name_eq, "=");

	return strncmp(entry, name_eq, n) == 0 &&
	    (entry[n] == '=' || entry[n] == '\0');
}

/* environ with c->env added or replacing; NULL when c->env adds nothing.
 * The caller frees the array, not the strings. */
static char **
make_envp(const char *const *env)
{
	size_t n = 0, k = 0, i, j;
	char **envp;

	if (env == NULL || env[0] == NULL)
		return NULL;
	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		n++;
	for (j = 0; env[j] != NULL; j++)
		n++;
	envp = xreallocarray(NULL, n + 1, sizeof(*envp));
	for (i = 0; environ != NULL && environ[i] != NULL; i++) {
		for (j = 0; env[j] != NULL; j++)
			if (same_name(environ[i], env[j]))
				break;
		if (env[j] == NULL)
			envp[k++] = environ[i];
	}
	for (j = 0; env[j] != NULL; j++)
		envp[k++] = (char *)env[j];
	envp[k] = NULL;
	return envp;
}

#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
#define START_WHAT	"posix_spawn"
/*
 * Start `/bin/sh -c LINE` as *pid with in_fd, out_fd and err_fd (-1: ours)
 * as its stdin, stdout and stderr.  Returns 0, or an errno: of the clone
 * (EAGAIN, ENOMEM), of a file action, or of execve("/bin/sh") (ENOENT,
 * EACCES, E2BIG...); nothing is left running then.
 */
static int
start_child(pid_t *pid, char *const argv[], char *const envp[], int in_fd,
    int out_fd, int err_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	size_t i;
	int e;

	sigemptyset(&none);
	sigemptyset(&dfl);
	for (i = 0; i < sizeof(reset_ignored) / sizeof(reset_ignored[0]); i++)
		sigaddset(&dfl, reset_ignored[i]);
	if ((e = posix_spawnattr_init(&attr)) != 0)
		return e;
	if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
		posix_spawnattr_destroy(&attr);
		return e;
	}
	/* Caught signals glibc resets itself (its child shares our memory,
	 * so no handler of ours may run there); SETSIGDEF adds the ignored
	 * ones of reset_ignored, which it would leave ignored. */
	if ((e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (e = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
	    (e = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (e = posix_spawnattr_setsigdefault(&attr, &dfl)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, in_fd,
	    STDIN_FILENO)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, out_fd,
	    STDOUT_FILENO)) == 0 &&
	    (err_fd == -1 || (e = posix_spawn_file_actions_adddup2(&fa, err_fd,
	    STDERR_FILENO)) == 0) &&
	    (e = posix_spawn_file_actions_addclosefrom_np(&fa,
	    STDERR_FILENO + 1)) == 0)
		e = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return e;
}
#else
#define START_WHAT	"fork"
/* The child: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn))
child_exec(char *const argv[], char *const envp[], int in_fd, int out_fd,
    int err_fd)
{
	struct sigaction sa, old;
	sigset_t none;
	size_t i;
	int sig;

	(void)setpgid(0, 0);
	if (dup2(in_fd, STDIN_FILENO) == -1 ||
	    dup2(out_fd, STDOUT_FILENO) == -1 ||
	    (err_fd != -1 && dup2(err_fd, STDERR_FILENO) == -1))
		_exit(127);
	closefrom(STDERR_FILENO + 1);
	/* Whatever our caller did with signals, the command gets defaults
	 * (every signal is blocked until then: no handler of ours runs). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &old) == 0 &&
		    old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
			(void)sigaction(sig, &sa, NULL);
	for (i = 0; i < sizeof(reset_ignored) / sizeof(reset_ignored[0]); i++)
		(void)sigaction(reset_ignored[i], &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/bin/sh", argv, envp);
	_exit(127);
}

/* As above with fork and exec: 0, or fork's errno; a failed execve is the
 * child's exit status 127. */
static int
start_child(pid_t *pid, char *const argv[], char *const envp[], int in_fd,
    int out_fd, int err_fd)
{
	sigset_t all, running;
	int e = 0;

	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &running);
	*pid = fork();
	if (*pid == 0)
		child_exec(argv, envp, in_fd, out_fd, err_fd);
	if (*pid == -1)
		e = errno;
	pthread_sigmask(SIG_SETMASK, &running, NULL);
	return e;
}
#endif

/*
 * A descriptor that poll(2) sees readable once the child has exited, or -1
 * where the kernel (before Linux 5.3) or a seccomp filter has no
 * pidfd_open(2); the loop then looks every COMMAND_EXIT_POLL_MS instead.
 * The child is not reaped yet, so its pid cannot have been reused.
 */
static int
pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);	/* close-on-exec */
#else
	(void)pid;
	return -1;
#endif
}

/* Log one stderr line (or count it, past COMMAND_ERR_LINES_MAX). */
static void
err_line_end(struct run *r)
{
	char esc[PF_ESCAPE_SIZE(COMMAND_ERR_LINE_MAX)];
	size_t len = r->line_len;

	if (r->lines_logged < COMMAND_ERR_LINES_MAX) {
		if (!r->line_cut && len > 0 && r->line[len - 1] == '\r')
			len--;
		pf_escape(r->line, len, esc, sizeof(esc));
		log_warnx("%s: %s%s", r->c->log_prefix, esc,
		    r->line_cut ? "..." : "");
		r->lines_logged++;
	} else
		r->lines_dropped++;
	r->line_len = 0;
	r->line_cut = false;
}

/* Take n bytes of stderr: whole lines are logged, the rest waits; past
 * COMMAND_ERR_LINES_MAX lines are only counted. */
static void
err_feed(struct run *r, const char *p, size_t n)
{
	const char *nl;
	size_t len, room, i;

	while (n > 0 && r->lines_logged < COMMAND_ERR_LINES_MAX) {
		nl = memchr(p, '\n', n);
		len = nl != NULL ? (size_t)(nl - p) : n;
		room = sizeof(r->line) - r->line_len;
		if (len > room)
			r->line_cut = true;
		memcpy(r->line + r->line_len, p, len < room ? len : room);
		r->line_len += len < room ? len : room;
		if (nl == NULL)
			return;
		err_line_end(r);
		p = nl + 1;
		n -= len + 1;
	}
	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		if (p[i] == '\n')
			r->lines_dropped++;
	/* an unfinished line, counted at the end */
	r->line_len = p[n - 1] != '\n';
}

/* After the last stderr byte: an unfinished line, and what was dropped. */
static void
err_finish(struct run *r)
{
	if (r->line_len > 0 || r->line_cut)
		err_line_end(r);
	if (r->lines_dropped > 0)
		log_warnx("%s: %zu more line%s on stderr not logged",
		    r->c->log_prefix, r->lines_dropped,
		    r->lines_dropped == 1 ? "" : "s");
}

/* Room for more stdout in r->out, up to out_max; with out_secret the old
 * buffer is wiped.  Returns the room (0: out_max reached). */
static size_t
out_room(struct run *r)
{
	size_t cap;
	char *nbuf;

	if (r->out_len < r->out_cap)
		return r->out_cap - r->out_len;
	if (r->out_cap == r->c->out_max)
		return 0;
	cap = r->out_cap < COMMAND_IO_BUF ? COMMAND_IO_BUF : r->out_cap * 2;
	if (cap > r->c->out_max || cap < r->out_cap)
		cap = r->c->out_max;
	nbuf = xmalloc(cap + 1);
	if (r->out_len > 0)
		memcpy(nbuf, r->out, r->out_len);
	if (r->out != NULL && r->c->out_secret)
		explicit_bzero(r->out, r->out_len);
	free(r->out);
	r->out = nbuf;
	r->out_cap = cap;
	return cap - r->out_len;
}

/*
 * One read(2) from the command's stdout (is_out) or stderr, of at most
 * `max` bytes.  Returns the bytes read, 0 when there is nothing to
 * read now (the fd is then closed at EOF), -1 on error.
 */
static ssize_t
read_one(struct run *r, bool is_out, size_t max, struct pf_error *err)
{
	int *fd = is_out ? &r->out_fd : &r->err_fd;
	size_t room = 0;
	ssize_t n;
	char *dst;

	if (is_out && (room = out_room(r)) > 0)
		dst = r->out + r->out_len;
	else {
		dst = r->scratch;
		room = COMMAND_IO_BUF;
	}
	if (room > max)
		room = max;
	do
		n = read(*fd, dst, room);
	while (n == -1 && errno == EINTR);
	if (n == 0) {
		close_fd(fd);
		return 0;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return pf_error_set_errno(err, PF_FAIL_IO, "read");
	}
	if (!is_out)
		err_feed(r, dst, (size_t)n);
	else if (dst != r->scratch)
		r->out_len += (size_t)n;
	return n;
}

/*
 * The shell has exited: what it wrote is in the pipes, all of it, so
 * reading what a pipe can hold (F_GETPIPE_SZ) without waiting gets it.  A
 * process it left behind that keeps writing cannot hold us: stdout stops
 * once out_max is kept, and neither reads more than that.
 */
static int
drain(struct run *r, bool is_out, struct pf_error *err)
{
	int *fd = is_out ? &r->out_fd : &r->err_fd;
	size_t left = COMMAND_PIPE_MAX;
	ssize_t n;

#ifdef F_GETPIPE_SZ
	if (*fd != -1 && (n = fcntl(*fd, F_GETPIPE_SZ)) > 0)
		left = (size_t)n;
#endif
	while (*fd != -1 && left > 0) {
		if (is_out && r->out_len == r->c->out_max)
			break;
		if ((n = read_one(r, is_out, left, err)) == -1)
			return -1;
		if (n == 0)
			break;
		left -= (size_t)n;
	}
	return 0;
}

/*
 * Write what stdin takes now.  At the end of the input, or when the command
 * closed its stdin (EPIPE: it did not want more; its exit status decides),
 * stdin is closed and the deadline armed.  Taking any input re-arms it.
 */
static int
write_input(struct run *r, struct pf_error *err)
{
	const struct command_input *p;
	const char *data;
	size_t len;
	ssize_t n;
	bool took = false;

	while (r->piece < r->c->nin) {
		p = &r->c->in[r->piece];
		if (p->buf != NULL) {
			data = (const char *)p->buf + r->off;
			len = p->len - (size_t)r->off;
		} else {
			if (r->chunk_done == r->chunk_len) {
				do
					n = pread(p->fd, r->chunk,
					    COMMAND_IO_BUF, r->off);
				while (n == -1 && errno == EINTR);
				if (n == -1)
					return pf_error_set_errno(err,
					    PF_FAIL_IO, "pread");
				r->chunk_len = (size_t)n;
				r->chunk_done = 0;
				r->off += n;
			}
			data = r->chunk + r->chunk_done;
			len = r->chunk_len - r->chunk_done;
		}
		if (len == 0) {		/* this piece is done */
			r->piece++;
			r->off = 0;
			r->chunk_len = r->chunk_done = 0;
			continue;
		}
		n = write(r->in_fd, data, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno != EPIPE)
				return pf_error_set_errno(err, PF_FAIL_IO,
				    "write");
			r->epipe = true;
			r->piece = r->c->nin;
			break;
		}
		took = true;
		if (p->buf != NULL)
			r->off += n;
		else
			r->chunk_done += (size_t)n;
	}
	if (r->piece == r->c->nin) {
		close_fd(&r->in_fd);
		took = true;
	}
	if (took)
		arm_deadline(r);
	return 0;
}

static void
kill_and_reap(struct run *r)
{
	if (r->pid == -1)
		return;
	(void)kill(-r->pid, SIGKILL);
	(void)kill(r->pid, SIGKILL);
	while (waitpid(r->pid, NULL, 0) == -1 && errno == EINTR)
		;
	r->pid = -1;
}

/* Fill res from a wait status. */
static void
set_end(struct command_result *res, int status)
{
	if (WIFSIGNALED(status)) {
		res->end = COMMAND_SIGNALLED;
		res->code = WTERMSIG(status);
		return;
	}
	res->code = WEXITSTATUS(status);
	res->end = res->code == 126 || res->code == 127 ? COMMAND_NOT_RUN :
	    COMMAND_EXITED;
}

/*
 * Until the shell exits: write input, read stdout and stderr, look at its
 * status.  The end is the shell's exit, not EOF on the pipes (see drain()).
 * Returns 0 with res->end and code set, or -1.
 */
static int
run_loop(struct run *r, struct command_result *res, struct pf_error *err)
{
	struct pollfd pfd[4];
	int status, ms, i;
	pid_t w;

	for (;;) {
		w = waitpid(r->pid, &status, WNOHANG);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return pf_error_set_errno(err, PF_FAIL_IO, "waitpid");
		if (w == r->pid) {
			/* Reaped: its pid (and group id) may be reused now,
			 * so nothing is killed after this. */
			r->pid = -1;
			close_fd(&r->in_fd);
			if (drain(r, true, err) == -1 ||
			    drain(r, false, err) == -1)
				return -1;
			set_end(res, status);
			return 0;
		}
		if ((ms = ms_left(&r->deadline, r->c->timeout)) == 0) {
			kill_and_reap(r);
			res->end = COMMAND_TIMED_OUT;
			res->code = 0;
			return 0;
		}
		/* Wake on room for input, output, EOF or the shell's exit
		 * (without a pidfd, look at it every COMMAND_EXIT_POLL_MS). */
		pfd[0].fd = r->in_fd;
		pfd[0].events = POLLOUT;
		pfd[1].fd = r->out_fd;
		pfd[1].events = POLLIN;
		pfd[2].fd = r->err_fd;
		pfd[2].events = POLLIN;
		pfd[3].fd = r->pidfd;
		pfd[3].events = POLLIN;
		if (r->pidfd == -1 && (ms < 0 || ms > COMMAND_EXIT_POLL_MS))
			ms = COMMAND_EXIT_POLL_MS;
		if (poll(pfd, 4, ms) == -1) {
			if (errno == EINTR)
				continue;
			return pf_error_set_errno(err, PF_FAIL_IO, "poll");
		}
		for (i = 0; i < 3; i++)
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			else if (i == 0 ? write_input(r, err) == -1 :
			    read_one(r, i == 1, SIZE_MAX, err) == -1)
				return -1;
	}
}

int
command_run(const struct command *c, struct command_result *res,
    struct pf_error *err)
{
	struct run r = {
		.c = c, .pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1,
		.pidfd = -1,
	};
	int child_in = -1, child_out = -1, child_err = -1, rc = -1, e;
	char *argv[4], **envp;
	sigset_t pipe_set, caller_mask, pending;
	bool pipe_pending;
	size_t i;

	memset(res, 0, sizeof(*res));
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)c->line;
	argv[3] = NULL;
	envp = make_envp(c->env);
	r.scratch = xmalloc(COMMAND_IO_BUF);
	for (i = 0; i < c->nin; i++)
		if (c->in[i].buf == NULL && r.chunk == NULL)
			r.chunk = xmalloc(COMMAND_IO_BUF);

	/* SIGPIPE stays pending, not delivered, while we write to stdin. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &caller_mask);
	sigpending(&pending);
	pipe_pending = sigismember(&pending, SIGPIPE) == 1;

	if ((c->nin > 0 ? make_pipe(&r.in_fd, &child_in, true, err) :
	    open_devnull(&child_in, O_RDONLY, err)) == -1 ||
	    (c->out_max > 0 ? make_pipe(&r.out_fd, &child_out, false, err) :
	    open_devnull(&child_out, O_WRONLY, err)) == -1 ||
	    (c->log_prefix != NULL &&
	    make_pipe(&r.err_fd, &child_err, false, err) == -1))
		goto done;
	if (c->out_max > 0) {
		out_room(&r);
		r.out[0] = '\0';
	}

	if ((e = start_child(&r.pid, argv, envp != NULL ? envp : environ,
	    child_in, child_out, child_err)) != 0) {
		r.pid = -1;
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
		/* A shortage (of the clone, or of execve) may pass; anything
		 * else is /bin/sh not executable, as fork and exec's 127. */
		if (errno_category(e) != PF_FAIL_TEMP) {
			res->end = COMMAND_NOT_RUN;
			res->code = 127;
			rc = 0;
			goto done;
		}
#endif
		errno = e;
		pf_error_set_errno(err, errno_category(e),
		    "cannot run it: " START_WHAT);
		goto done;
	}
	/* Both sides set the group, so kill(-pid) works whoever runs first
	 * (glibc's posix_spawn returns after the child's exec, but valgrind,
	 * for one, makes its clone a plain fork). */
	(void)setpgid(r.pid, r.pid);
	close_fd(&child_in);
	close_fd(&child_out);
	close_fd(&child_err);
	r.pidfd = pidfd_for(r.pid);

	arm_deadline(&r);
	if (r.in_fd != -1 && write_input(&r, err) == -1)
		goto done;
	rc = run_loop(&r, res, err);

done:
	kill_and_reap(&r);	/* after an error only */
	if (c->log_prefix != NULL && r.pid == -1 && rc == 0)
		err_finish(&r);
	close_fd(&r.in_fd);
	close_fd(&r.out_fd);
	close_fd(&r.err_fd);
	close_fd(&r.pidfd);
	close_fd(&child_in);
	close_fd(&child_out);
	close_fd(&child_err);
	if (r.epipe && !pipe_pending) {
		struct timespec zero = { 0, 0 };

		while (sigtimedwait(&pipe_set, NULL, &zero) == -1 &&
		    errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &caller_mask, NULL);
	if (c->out_secret)	/* what was dropped */
		explicit_bzero(r.scratch, COMMAND_IO_BUF);
	free(r.scratch);
	if (r.chunk != NULL)
		explicit_bzero(r.chunk, COMMAND_IO_BUF);
	free(r.chunk);
	free(envp);
	if (rc == 0) {
		res->out = r.out;
		res->out_len = r.out_len;
		if (res->out != NULL)
			res->out[res->out_len] = '\0';
	} else {
		if (r.out != NULL)
			explicit_bzero(r.out, r.out_len);
		free(r.out);
	}
	return rc;
}

void
command_result_free(struct command_result *r)
{
	if (r->out != NULL)
		explicit_bzero(r->out, r->out_len);
	free(r->out);
	r->out = NULL;
	r->out_len = 0;
}

void
command_failure(const struct command *c, const struct command_result *r,
    const char *what, struct pf_error *err)
{
	switch (r->end) {
	case COMMAND_EXITED:
		if (r->code == EX_TEMPFAIL)
			pf_error_set(err, PF_FAIL_TEMP, "the %s asked to try "
			    "again later (exit %d)", what, r->code);
		else
			pf_error_set(err, PF_FAIL_TEMP, "the %s failed (exit %d)",
			    what, r->code);
		break;
	case COMMAND_SIGNALLED:
		pf_error_set(err, PF_FAIL_TEMP, "the %s was killed by signal %d",
		    what, r->code);
		break;
	case COMMAND_TIMED_OUT:
		pf_error_set(err, PF_FAIL_TEMP, "the %s did not finish within "
		    "%u s", what, c->timeout);
		break;
	case COMMAND_NOT_RUN:
		pf_error_set(err, PF_FAIL_CONFIG, "the %s command cannot be "
		    "run: %s", what, c->line);
		break;
	}
}
