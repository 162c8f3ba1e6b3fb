/*
 * net.c - TCP connections with deadlines, optionally wrapped in TLS (tls.c).
 *
 * Sockets are non-blocking from the start.  Every operation is tried first
 * and, when it would block, the socket is polled until a deadline: connect
 * gets the account's timeout, a write gets it afresh whenever some bytes
 * went out, the TLS handshake gets it as a whole, and a read gets its
 * wait's deadline (struct io_wait in net.h: armed at the first read of the
 * wait that would block, held across reads).  The clock is read only when
 * a read would block, never while the bytes are there.  No alarm(), no
 * signals.
 *
 * SIGPIPE: plain writes use send(MSG_NOSIGNAL) and tls.c's socket BIO does
 * the same, so a peer that went away yields EPIPE (75), and the process's
 * SIGPIPE disposition is never touched (it would be inherited by
 * password_command's children).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "xmalloc.h"

struct conn {
	int		 fd;
	unsigned	 timeout_s;	/* 0: wait forever */
	char		*host;		/* as given, or NULL (conn_from_fd) */
	unsigned	 port;
	char		 peer[INET6_ADDRSTRLEN];	/* numeric, or "unknown" */
	char		 name[512];	/* "host port 995 (192.0.2.1)" for messages */
	struct tls	*tls;
};

enum wait_result {
	WAIT_READY,
	WAIT_TIMEOUT,
	WAIT_ERROR,
};

/* A deadline timeout_s seconds from now on the monotonic clock. */
static struct timespec
deadline_after(unsigned timeout_s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)timeout_s;
	return ts;
}

/*
 * Wait until fd is ready for `events` or the deadline passes (never, if
 * timeout_s is 0).  POLLERR and POLLHUP count as ready: the next call on the
 * socket reports what happened.
 */
static enum wait_result
wait_fd(int fd, short events, const struct timespec *deadline,
    unsigned timeout_s)
{
	struct pollfd pfd;
	struct timespec now;
	long long ms;
	int n;

	for (;;) {
		if (timeout_s == 0)
			ms = -1;
		else {
			clock_gettime(CLOCK_MONOTONIC, &now);
			ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
			    (deadline->tv_nsec - now.tv_nsec) / 1000000;
			if (ms <= 0)
				return WAIT_TIMEOUT;
			/* round up so we never wake a hair early and spin */
			ms += 1;
			if (ms > INT_MAX)
				ms = INT_MAX;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return WAIT_ERROR;
		}
		if (n > 0)
			return WAIT_READY;
	}
}

static void
set_name(struct conn *c)
{
	if (c->host != NULL)
		snprintf(c->name, sizeof(c->name), "%s port %u (%s)", c->host,
		    c->port, c->peer);
	else
		snprintf(c->name, sizeof(c->name), "%s", c->peer);
}

/* Fill c->peer (and the port if unknown) from getpeername. */
static void
set_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	snprintf(c->peer, sizeof(c->peer), "unknown");
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, c->peer, sizeof(c->peer));
		if (c->port == 0)
			c->port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->peer, sizeof(c->peer));
		if (c->port == 0)
			c->port = ntohs(sin6->sin6_port);
	}
}

static struct conn *
conn_new(int fd, const char *host, unsigned port, unsigned timeout_s)
{
	struct conn *c;

	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->timeout_s = timeout_s;
	c->host = host != NULL ? xstrdup(host) : NULL;
	c->port = port;
	set_peer(c);
	set_name(c);
	return c;
}

/*
 * One non-blocking connect to one address, bounded by the timeout.  Returns
 * the connected socket, or -1 with err set (PF_FAIL_TEMP).
 */
static int
connect_one(const struct addrinfo *ai, const char *host, unsigned port,
    unsigned timeout_s, struct pf_error *err)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	struct timespec deadline;
	socklen_t sl;
	int fd = -1, soerr;

	if (ai->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
		    addr, sizeof(addr));
	else if (ai->ai_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr,
		    sizeof(addr));

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1) {
		pf_error_set_errno(err, PF_FAIL_TEMP,
		    "connect to %s port %u (%s): socket", host, port, addr);
		goto fail;
	}
	deadline = deadline_after(timeout_s);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		pf_error_set_errno(err, PF_FAIL_TEMP, "connect to %s port %u (%s)",
		    host, port, addr);
		goto fail;
	}
	switch (wait_fd(fd, POLLOUT, &deadline, timeout_s)) {
	case WAIT_READY:
		break;
	case WAIT_TIMEOUT:
		pf_error_set(err, PF_FAIL_TEMP,
		    "connect to %s port %u (%s): timed out after %u s", host,
		    port, addr, timeout_s);
		goto fail;
	case WAIT_ERROR:
		pf_error_set_errno(err, PF_FAIL_TEMP,
		    "connect to %s port %u (%s): poll", host, port, addr);
		goto fail;
	}
	sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1) {
		pf_error_set_errno(err, PF_FAIL_TEMP,
		    "connect to %s port %u (%s): getsockopt", host, port, addr);
		goto fail;
	}
	if (soerr != 0) {
		errno = soerr;
		pf_error_set_errno(err, PF_FAIL_TEMP, "connect to %s port %u (%s)",
		    host, port, addr);
		goto fail;
	}
	return fd;

fail:
	if (fd != -1)
		close(fd);
	return -1;
}

int
conn_open(const char *host, unsigned port, unsigned timeout_s,
    struct conn **conn_r, struct pf_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char serv[16];
	int fd = -1, rc;

	*conn_r = NULL;
	if (port == 0 || port > 65535)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "connect to %s: invalid port %u", host, port);
	snprintf(serv, sizeof(serv), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, serv, &hints, &res);
	if (rc != 0) {
		if (rc == EAI_SYSTEM)
			return pf_error_set_errno(err, PF_FAIL_TEMP,
			    "cannot resolve %s", host);
		return pf_error_set(err, PF_FAIL_TEMP, "cannot resolve %s: %s",
		    host, gai_strerror(rc));
	}
	pf_error_set(err, PF_FAIL_TEMP, "cannot resolve %s: no address",
	    host);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if ((fd = connect_one(ai, host, port, timeout_s, err)) != -1)
			break;
		/* The last address's error is the one reported. */
		log_debug("%s", err->what);
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	pf_error_clear(err);
	*conn_r = conn_new(fd, host, port, timeout_s);
	return 0;
}

struct conn *
conn_from_fd(int fd, unsigned timeout_s)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return conn_new(fd, NULL, 0, timeout_s);
}

/* Report a wait that did not end in "ready". */
static int
wait_failed(struct conn *c, enum wait_result w, const char *what,
    struct pf_error *err)
{
	if (w == WAIT_TIMEOUT)
		return pf_error_set(err, PF_FAIL_TEMP, "%s %s: timed out after %u s",
		    what, c->name, c->timeout_s);
	return pf_error_set_errno(err, PF_FAIL_TEMP, "%s %s: poll", what,
	    c->name);
}

int
conn_starttls(struct conn *c, const struct tls_settings *ts,
    struct pf_error *err)
{
	struct timespec deadline;
	enum wait_result w;
	int r;

	if (c->tls != NULL)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "TLS handshake with %s: TLS is already active", c->name);
	if ((c->tls = tls_new(c->fd, ts, err)) == NULL)
		return -1;
	deadline = deadline_after(c->timeout_s);
	for (;;) {
		r = tls_handshake(c->tls, err);
		if (r == 0)
			return 0;
		if (r == TLS_WANT_READ)
			w = wait_fd(c->fd, POLLIN, &deadline, c->timeout_s);
		else if (r == TLS_WANT_WRITE)
			w = wait_fd(c->fd, POLLOUT, &deadline, c->timeout_s);
		else
			break;
		if (w != WAIT_READY) {
			wait_failed(c, w, "TLS handshake with", err);
			break;
		}
	}
	/* A failed handshake leaves no half session behind. */
	tls_free(&c->tls);
	return -1;
}

ssize_t
conn_read(void *cp, void *buf, size_t len, struct io_wait *w,
    struct pf_error *err)
{
	struct conn *c = cp;
	struct io_wait own;
	struct timespec now;
	enum wait_result wr;
	ssize_t n;
	short events;

	if (len == 0)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "read from %s: empty buffer", c->name);
	if (w == NULL) {
		io_wait_begin(&own, IO_WAIT_LINE);
		w = &own;
	}
	for (;;) {
		if (c->tls != NULL) {
			n = tls_read(c->tls, buf, len, err);
			if (n == TLS_ERROR)
				return -1;
			events = n == TLS_WANT_READ ? POLLIN : POLLOUT;
		} else {
			n = recv(c->fd, buf, len, 0);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
				return pf_error_set_errno(err, PF_FAIL_TEMP,
				    "read from %s", c->name);
			events = POLLIN;
		}
		if (n >= 0) {
			io_wait_got(w, (size_t)n, c->timeout_s);
			return n;
		}
		if (!w->armed) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			io_wait_arm(w, &now, c->timeout_s);
		}
		wr = wait_fd(c->fd, events, &w->deadline, c->timeout_s);
		if (wr == WAIT_TIMEOUT) {
			w->expired = true;
			if (w->kind == IO_WAIT_DATA)
				return pf_error_set(err, PF_FAIL_TEMP,
				    "read from %s: stalled: less than %d KiB/s "
				    "for %u s", c->name, NET_STALL_RATE_KIB,
				    c->timeout_s);
		}
		if (wr != WAIT_READY)
			return wait_failed(c, wr, "read from", err);
	}
}

int
conn_write(void *cp, const void *buf, size_t len, struct pf_error *err)
{
	struct conn *c = cp;
	const unsigned char *p = buf;
	struct timespec deadline;
	enum wait_result w;
	ssize_t n;
	short events;

	deadline = deadline_after(c->timeout_s);
	while (len > 0) {
		if (c->tls != NULL) {
			n = tls_write(c->tls, p, len, err);
			if (n == TLS_ERROR)
				return -1;
			events = n == TLS_WANT_READ ? POLLIN : POLLOUT;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					return pf_error_set_errno(err,
					    PF_FAIL_TEMP, "write to %s",
					    c->name);
			}
			events = POLLOUT;
		}
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			/* progress: the next chunk gets a whole timeout */
			deadline = deadline_after(c->timeout_s);
			continue;
		}
		if ((w = wait_fd(c->fd, events, &deadline, c->timeout_s)) !=
		    WAIT_READY)
			return wait_failed(c, w, "write to", err);
	}
	return 0;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls != NULL;
}

int
conn_tls_info(const struct conn *c, struct tls_info *info)
{
	memset(info, 0, sizeof(*info));
	if (c->tls == NULL)
		return -1;
	tls_describe(c->tls, info);
	return 0;
}

bool
conn_tls_resumed(const struct conn *c)
{
	return c->tls != NULL && tls_resumed(c->tls);
}

int
conn_tls_session(const struct conn *c, unsigned char **der_r, size_t *len_r)
{
	return c->tls != NULL ? tls_session_export(c->tls, der_r, len_r) : -1;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer;
}

void
conn_close(struct conn **cp)
{
	struct conn *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	*cp = NULL;
	tls_free(&c->tls);
	if (c->fd != -1)
		close(c->fd);
	free(c->host);
	free(c);
}
