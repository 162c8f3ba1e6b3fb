/*
 * net.h - a connection to a server: TCP with deadlines, optionally wrapped in
 * TLS.  Every connect and every read is bounded by the account's timeout
 * (non-blocking sockets and poll(2), never alarm()).  The TLS half lives in
 * tls.c, the only OpenSSL user for TLS; this header shows none of it.
 */
#ifndef POPFETCH_NET_H
#define POPFETCH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct conn;

/* What a TLS handshake must check (from the account's settings). */
struct tls_settings {
	const char	*host;		/* SNI and the name the certificate must match */
	bool		 verify;	/* tls_verify */
	const char	*ca_file;	/* NULL: system default store */
	bool		 has_fingerprint;
	unsigned char	 fingerprint[32];	/* SHA-256 of the DER leaf; replaces CA+name checks */
};

/* What `popfetch check` shows of an established TLS session. */
struct tls_info {
	char	version[32];		/* "TLSv1.3" */
	char	cipher[128];		/* "TLS_AES_256_GCM_SHA384" */
	char	fingerprint[128];	/* "sha256:AB:CD:..." (form tls_fingerprint accepts) */
};

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
 * Read up to len bytes, waiting at most the timeout.  Returns the number of
 * bytes read (> 0), 0 at end of stream (clean close), or -1 with err set:
 * PF_FAIL_TEMP for timeout or a lost connection, PF_FAIL_TLS for a TLS
 * protocol failure.
 */
ssize_t	conn_read(void *c, void *buf, size_t len, struct pf_error *err);

/*
 * Write all of buf, waiting at most the timeout for each chunk.  Returns 0,
 * or -1 with err set (PF_FAIL_TEMP, PF_FAIL_TLS).
 */
int	conn_write(void *c, const void *buf, size_t len, struct pf_error *err);

bool	conn_is_tls(const struct conn *c);

/* Fill *info for a TLS connection; returns -1 if the connection is plain. */
int	conn_tls_info(const struct conn *c, struct tls_info *info);

/* The peer's numeric address ("127.0.0.1", "::1"), or "unknown". */
const char *conn_peer_addr(const struct conn *c);

/* Shut TLS down (best effort), close the socket, free, set *c to NULL. */
void	conn_close(struct conn **c);

#endif
