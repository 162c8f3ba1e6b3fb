/*
 * net.h - a connection to a server: TCP with deadlines, optionally wrapped in
 * TLS.  Every connect, write and wait for data is bounded by the account's
 * timeout (non-blocking sockets and poll(2), never alarm()).  The TLS half
 * lives in tls.c, the only OpenSSL user for TLS; this header shows none of
 * it.
 */
#ifndef POPFETCH_NET_H
#define POPFETCH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "error.h"
#include "params.h"
#include "tls.h"	/* struct tls_settings, struct tls_info */

struct conn;

/*
 * One wait for server data (doc/DESIGN.md §5.4), owned by the reader, who
 * begins it with io_wait_begin() where a wait starts (pop3.c: before each
 * status or listing line, and at the start of a message's data) and passes
 * it to every conn_read() that serves it.  The deadline is the transport's:
 * it is armed at the first read that would block, so a reader whose bytes
 * are already there never reads the clock, and it holds across reads:
 *
 *   IO_WAIT_LINE  the wait gets `timeout` seconds in all: a line that comes
 *                 one byte at a time fails as a line that never comes;
 *   IO_WAIT_DATA  from the first read that blocks, `timeout` seconds to
 *                 receive NET_STALL_RATE_KIB KiB per second of it (counted
 *                 from the last time that much had come); once it has, the
 *                 next read that blocks arms a new deadline.  Less is a
 *                 stall.
 *
 * A read whose deadline passes fails with PF_FAIL_TEMP and sets `expired`.
 * The transport's fields are set through io_wait_arm() and io_wait_got()
 * (also for test transports with a clock of their own).
 */
enum io_wait_kind {
	IO_WAIT_LINE,
	IO_WAIT_DATA,
};

struct io_wait {
	enum io_wait_kind kind;		/* the reader's */
	bool		 armed;		/* the deadline runs */
	bool		 expired;	/* a read failed because it passed */
	struct timespec	 deadline;	/* CLOCK_MONOTONIC */
	uint64_t	 got;		/* IO_WAIT_DATA: octets since the last
					   quota was reached */
};

/* The reader: a new wait of this kind starts now. */
static inline void
io_wait_begin(struct io_wait *w, enum io_wait_kind kind)
{
	w->kind = kind;
	w->armed = false;
	w->expired = false;
	w->got = 0;
}

/* The transport: a read is about to block at `now`; arm the deadline
 * (timeout_s from now) unless it runs already.  timeout_s 0: never. */
static inline void
io_wait_arm(struct io_wait *w, const struct timespec *now, unsigned timeout_s)
{
	if (w->armed || timeout_s == 0)
		return;
	w->deadline = *now;
	w->deadline.tv_sec += (time_t)timeout_s;
	w->armed = true;
}

/* The transport: a read brought n octets.  Data that reached its quota
 * for the timeout disarms the deadline: the next block starts a new one. */
static inline void
io_wait_got(struct io_wait *w, size_t n, unsigned timeout_s)
{
	if (w->kind != IO_WAIT_DATA)
		return;
	w->got += n;
	if (w->got >= (uint64_t)NET_STALL_RATE_KIB * 1024 * timeout_s) {
		w->got = 0;
		w->armed = false;
	}
}

/*
 * Resolve `host` (getaddrinfo, IPv6 and IPv4) and connect to `port`, trying
 * each address in turn, each attempt bounded by timeout_s seconds.
 * On success *conn_r is a new connection (free with conn_close) and 0 is
 * returned.  Errors: PF_FAIL_TEMP (DNS failure, refused, unreachable, timed
 * out), naming host and port.
 */
int	conn_open(const char *host, unsigned port, unsigned timeout_s,
	    struct conn **conn_r, struct pf_error *err);

/* Wrap an already connected socket (tests, socketpair).  Takes the fd. */
struct conn *conn_from_fd(int fd, unsigned timeout_s);

/*
 * Run a TLS client handshake on the connection (implicit TLS right after
 * connect, or after STLS's +OK).  TLS 1.2 minimum, SNI sent, certificate and
 * host name verified unless ts->verify is false; with a fingerprint, only the
 * fingerprint is checked.  Errors: PF_FAIL_TLS with the reason in words
 * ("certificate has expired", "host name mismatch: certificate is for X",
 * "fingerprint mismatch: server presented sha256:..."); PF_FAIL_TEMP when the
 * connection times out or drops during the handshake; PF_FAIL_CONFIG when
 * ts->ca_file cannot be read or holds no certificate.  The whole handshake
 * is bounded by one timeout.  On failure the connection stays plain (only
 * conn_close is useful then).
 */
int	conn_starttls(struct conn *c, const struct tls_settings *ts,
	    struct pf_error *err);

/*
 * Read up to len bytes for wait w (see struct io_wait; NULL: a wait of its
 * own, IO_WAIT_LINE, i.e. at most the timeout for this read).  Returns the
 * number of bytes read (> 0), 0 at end of stream (clean close), or -1 with
 * err set: PF_FAIL_TEMP for a lost connection or a passed deadline ("read
 * from HOST: timed out after N s", or for IO_WAIT_DATA "read from HOST:
 * stalled: less than 1 KiB/s for N s"; w->expired set), PF_FAIL_TLS for a
 * TLS protocol failure.
 */
ssize_t	conn_read(void *c, void *buf, size_t len, struct io_wait *w,
	    struct pf_error *err);

/*
 * Write all of buf, waiting at most the timeout for each chunk.  Returns 0,
 * or -1 with err set (PF_FAIL_TEMP, PF_FAIL_TLS).
 */
int	conn_write(void *c, const void *buf, size_t len, struct pf_error *err);

bool	conn_is_tls(const struct conn *c);

/* Fill *info for a TLS connection; returns -1 if the connection is plain. */
int	conn_tls_info(const struct conn *c, struct tls_info *info);

/* Whether the TLS session was resumed (false for a plain connection). */
bool	conn_tls_resumed(const struct conn *c);

/* The newest TLS session to keep, as tls_session_export; -1: none. */
int	conn_tls_session(const struct conn *c, unsigned char **der_r,
	    size_t *len_r);

/* The peer's numeric address ("127.0.0.1", "::1"), or "unknown". */
const char *conn_peer_addr(const struct conn *c);

/* Shut TLS down (best effort), close the socket, free, set *c to NULL. */
void	conn_close(struct conn **c);

#endif
