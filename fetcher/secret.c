/*
 * secret.c - password and password_command (popfetch.conf(5)).
 *
 * The command runs as `/bin/sh -c COMMAND` in its own process group, so a
 * timeout can kill everything it started (a pipeline, a gpg-agent
 * helper...) with one kill(-pgid).  Its output is read with poll(2) and the
 * same deadline bounds the wait for its exit.  All of its output is
 * consumed while it runs, not just the first line, so that `pass show x`
 * does not die of SIGPIPE and turn a good secret into a failure.  The
 * secret is taken when the shell exits, not at EOF on the pipe, which a
 * background process it leaves behind can hold off indefinitely; such a
 * process is left alone.  Everything read is wiped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "params.h"
#include "secret.h"
#include "xmalloc.h"

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

/* The child: only async-signal-safe calls from here to execv. */
static void __attribute__((noreturn))
child_exec(const char *command, int in_fd, int out_fd)
{
	char *argv[4];
	sigset_t none;

	(void)setpgid(0, 0);
	if (dup2(in_fd, STDIN_FILENO) == -1 ||
	    dup2(out_fd, STDOUT_FILENO) == -1)
		_exit(127);
	closefrom(STDERR_FILENO + 1);
	/* Whatever our caller did with these, the command gets defaults. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)command;
	argv[3] = NULL;
	execv("/bin/sh", argv);
	_exit(127);
}

/*
 * A descriptor that poll(2) sees readable once the child has exited, or -1
 * where the kernel (before Linux 5.3) or a seccomp filter has no
 * pidfd_open(2); the caller then looks every SECRET_EXIT_POLL_MS instead.
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

static void
kill_and_reap(pid_t pid)
{
	(void)kill(-pid, SIGKILL);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* Explain a wait status that is not "exited 0". */
static int
status_error(int status, struct pf_error *err)
{
	int code;

	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command exited with status %d%s", code,
		    code == 127 ? " (command not found)" :
		    code == 126 ? " (command not executable)" : "");
	}
	if (WIFSIGNALED(status))
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command was killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	return pf_error_set(err, PF_FAIL_CONFIG,
	    "password_command ended with wait status %#x", status);
}

/* Accept a secret: no CR, LF or NUL (popfetch.conf(5)). */
static int
check_secret(const char *s, size_t len, const char *source,
    struct pf_error *err)
{
	if (memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL ||
	    memchr(s, '\0', len) != NULL)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "the secret from %s contains CR, LF or NUL", source);
	return 0;
}

static int
run_command(const char *command, unsigned timeout_s, char **secret_r,
    struct pf_error *err)
{
	int pipefd[2] = { -1, -1 }, devnull = -1, pidfd = -1, status = 0, ms;
	char *buf = NULL, scratch[4096], *nl;
	size_t used = 0, linelen;
	bool overflow = false, eof = false, exited = false;
	struct timespec deadline;
	struct pollfd pfd[2];
	pid_t pid = -1, w;
	ssize_t r;

	buf = xmalloc(SECRET_OUTPUT_MAX + 1);
	if (pipe2(pipefd, O_CLOEXEC) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG,
		    "password_command: cannot run it: pipe");
		goto fail;
	}
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG,
		    "password_command: cannot run it: open(/dev/null)");
		goto fail;
	}
	if ((pipefd[1] = fd_above_stdio(pipefd[1])) == -1 ||
	    (devnull = fd_above_stdio(devnull)) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG,
		    "password_command: cannot run it: fcntl");
		goto fail;
	}

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)timeout_s;
	if ((pid = fork()) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG,
		    "password_command: cannot run it: fork");
		goto fail;
	}
	if (pid == 0)
		child_exec(command, devnull, pipefd[1]);
	/* Both sides set the group, so kill(-pid) works whoever runs first. */
	(void)setpgid(pid, pid);
	close(pipefd[1]);
	pipefd[1] = -1;
	close(devnull);
	devnull = -1;
	(void)fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);
	pidfd = pidfd_for(pid);

	/*
	 * Until the shell exits, read everything it prints (keeping the first
	 * SECRET_OUTPUT_MAX bytes) and look at its status each time the pipe
	 * runs dry.  The end is the shell's exit, not EOF on the pipe: a
	 * background process it leaves (`echo secret; sleep 20 &`) holds the
	 * write end open, and waiting for EOF would wait for that process.
	 * Whatever the shell wrote before exiting is already in the pipe, so
	 * after its exit one more non-blocking drain finds it all; that drain
	 * fills only buf and then stops, so a leftover process that keeps
	 * writing cannot hold us either.  A shell that closes its stdout but
	 * keeps running still has to exit within the timeout.
	 */
	for (;;) {
		if (!eof) {
			if (exited && used == SECRET_OUTPUT_MAX)
				break;
			if (used < SECRET_OUTPUT_MAX)
				r = read(pipefd[0], buf + used,
				    SECRET_OUTPUT_MAX - used);
			else
				r = read(pipefd[0], scratch, sizeof(scratch));
			if (r > 0) {
				if (used < SECRET_OUTPUT_MAX)
					used += (size_t)r;
				else
					overflow = true;
				/* a command that never stops writing */
				if (!exited &&
				    ms_left(&deadline, timeout_s) == 0)
					goto timeout;
				continue;
			}
			if (r == 0)
				eof = true;
			else if (errno == EINTR)
				continue;
			else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				pf_error_set_errno(err, PF_FAIL_CONFIG,
				    "password_command: read");
				goto fail;
			}
		}
		/* The pipe is empty or at EOF. */
		if (exited)
			break;
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			/* Reaped: its pid (and group id) may be reused now,
			 * so nothing is killed after this. */
			exited = true;
			pid = -1;
			continue;	/* what it wrote just before exiting */
		}
		if (w == -1) {
			if (errno == EINTR)
				continue;
			pf_error_set_errno(err, PF_FAIL_CONFIG,
			    "password_command: waitpid");
			goto fail;
		}
		if ((ms = ms_left(&deadline, timeout_s)) == 0)
			goto timeout;
		/* Wake on output, EOF or the shell's exit (without a pidfd,
		 * look at it every SECRET_EXIT_POLL_MS). */
		pfd[0].fd = eof ? -1 : pipefd[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = pidfd;
		pfd[1].events = POLLIN;
		if (pidfd == -1 && (ms < 0 || ms > SECRET_EXIT_POLL_MS))
			ms = SECRET_EXIT_POLL_MS;
		if (poll(pfd, 2, ms) == -1 && errno != EINTR) {
			pf_error_set_errno(err, PF_FAIL_CONFIG,
			    "password_command: poll");
			goto fail;
		}
	}
	if (pidfd != -1)
		close(pidfd);
	pidfd = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		status_error(status, err);
		goto fail;
	}

	if ((nl = memchr(buf, '\n', used)) != NULL)
		linelen = (size_t)(nl - buf);
	else if (overflow || used == SECRET_OUTPUT_MAX) {
		pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command printed a first line longer than %d bytes",
		    SECRET_OUTPUT_MAX);
		goto fail;
	} else
		linelen = used;
	if (linelen > 0 && buf[linelen - 1] == '\r')
		linelen--;
	if (linelen == 0) {
		pf_error_set(err, PF_FAIL_AUTH, "password_command printed nothing");
		goto fail;
	}
	if (check_secret(buf, linelen, "password_command", err) == -1)
		goto fail;
	*secret_r = xmalloc(linelen + 1);
	memcpy(*secret_r, buf, linelen);
	(*secret_r)[linelen] = '\0';
	explicit_bzero(buf, SECRET_OUTPUT_MAX + 1);
	explicit_bzero(scratch, sizeof(scratch));
	free(buf);
	close(pipefd[0]);
	return 0;

timeout:
	pf_error_set(err, PF_FAIL_CONFIG, "password_command timed out after %u s",
	    timeout_s);
fail:
	if (pid != -1)
		kill_and_reap(pid);
	if (pipefd[0] != -1)
		close(pipefd[0]);
	if (pipefd[1] != -1)
		close(pipefd[1]);
	if (devnull != -1)
		close(devnull);
	if (pidfd != -1)
		close(pidfd);
	explicit_bzero(buf, SECRET_OUTPUT_MAX + 1);
	explicit_bzero(scratch, sizeof(scratch));
	free(buf);
	return -1;
}

int
secret_get(const char *password, const char *password_command,
    unsigned timeout_s, char **secret_r, struct pf_error *err)
{
	*secret_r = NULL;
	if (password != NULL) {
		if (check_secret(password, strlen(password), "password",
		    err) == -1)
			return -1;
		*secret_r = xstrdup(password);
		return 0;
	}
	if (password_command == NULL)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "neither password nor password_command is set");
	return run_command(password_command, timeout_s, secret_r, err);
}
