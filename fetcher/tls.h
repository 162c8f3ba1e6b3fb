/*
 * tls.h - the TLS client layer under net.c (RFC 8446, RFC 5246; RFC 8314 for
 * implicit TLS, RFC 2595 for STLS).  tls.c is the only OpenSSL user for TLS;
 * this header shows none of it (struct tls is opaque, as in mpop's mtls.h).
 *
 * The layer never waits: it works on a non-blocking socket, and every call
 * that would block returns TLS_WANT_READ or TLS_WANT_WRITE.  The caller
 * (net.c) then polls the socket with its deadline and repeats the same call.
 * So every timeout and every poll(2) lives in net.c.
 *
 * Writes go through a private socket BIO that uses send(2) with
 * MSG_NOSIGNAL, so a peer that has gone away gives EPIPE, never SIGPIPE, and
 * the process-wide SIGPIPE disposition is left alone.
 */
#ifndef POPFETCH_TLS_H
#define POPFETCH_TLS_H

#include <sys/types.h>

#include <stdbool.h>

#include "error.h"

struct tls;

/* A server certificate that failed verification, for `check` to show
 * (strings from the certificate: untrusted, print them escaped). */
struct tls_cert_info {
	bool	valid;			/* filled in */
	char	fingerprint[128];	/* "sha256:AB:CD:..." */
	char	subject[512];		/* RFC 2253 form */
	char	issuer[512];
	char	not_before[32];		/* "2026-12-06 10:00:00 UTC" */
	char	not_after[32];
};

/* What a TLS handshake must check (from the account's settings). */
struct tls_settings {
	const char	*host;		/* SNI and the name the certificate must match */
	bool		 verify;	/* tls_verify */
	const char	*ca_file;	/* NULL: system default store */
	bool		 has_fingerprint;
	unsigned char	 fingerprint[32];	/* SHA-256 of the DER leaf; replaces CA+name checks */
	struct tls_cert_info *rejected;	/* not NULL: gets the server's certificate
					 * when it fails verification or the pin */
	/* Resumption (doc/DESIGN.md §12): a stored session for exactly
	 * these settings, to offer (NULL: none), and whether to keep the
	 * sessions the server sends for tls_session_export. */
	const struct tls_stored *session;
	bool		 keep_session;
};

/* A stored session, parsed (tls_stored_parse). */
struct tls_stored;

/* What `popfetch check` shows of an established TLS session. */
struct tls_info {
	char	version[32];		/* "TLSv1.3" */
	char	cipher[128];		/* "TLS_AES_256_GCM_SHA384" */
	char	fingerprint[128];	/* "sha256:AB:CD:..." (form tls_fingerprint accepts) */
};

/* Results of tls_handshake, tls_read and tls_write besides success. */
#define TLS_ERROR	(-1)	/* failed; err is set */
#define TLS_WANT_READ	(-2)	/* wait until the socket is readable, then call again */
#define TLS_WANT_WRITE	(-3)	/* wait until the socket is writable, then call again */

/*
 * Initialize OpenSSL (its configuration, error strings, the algorithms a
 * client context fetches) once, before `fetch -j` forks its job
 * processes: each job then starts with it done instead of doing it
 * again.  Optional: any
 * failure is left for tls_new to report.
 */
void		 tls_warm_up(void);

/*
 * Load the certificate store for CA file ca_file (NULL: the system store)
 * into this process's cache of stores, so that every account using it,
 * and every child forked after, shares it instead of loading it again.
 * Optional: a file that will not load is not kept, and tls_new reports it
 * for each account that uses it.
 */
void		 tls_preload_ca(const char *ca_file);

/*
 * Prepare a TLS client session on the connected, non-blocking socket fd,
 * with an SSL_CTX for *ts's settings (built once per process for the same
 * settings and CA file, then shared): TLS 1.2 minimum, SNI = ts->host
 * (not for IP literals), chain and host-name verification with OpenSSL's own
 * checks (CA file ts->ca_file, else the system store) unless ts->verify is
 * false; with ts->has_fingerprint, no chain or name check but a SHA-256 pin
 * of the leaf, checked in tls_handshake.  The fd stays owned by the caller
 * (tls_free does not close it); *ts is copied, nothing of it is kept.
 * Returns the new session (free with tls_free), or NULL with err set:
 * PF_FAIL_CONFIG if ts->ca_file cannot be loaded, PF_FAIL_TLS otherwise.
 */
struct tls	*tls_new(int fd, const struct tls_settings *ts,
		    struct pf_error *err);

/*
 * Drive the client handshake.  Returns 0 once it is complete and the peer
 * accepted (certificate chain and name verified, or fingerprint matched),
 * TLS_WANT_READ / TLS_WANT_WRITE to be called again, or TLS_ERROR with err
 * set: PF_FAIL_TLS with the reason in words ("certificate verify failed:
 * certificate has expired", "host name mismatch: certificate is for
 * localhost, 127.0.0.1", "certificate fingerprint mismatch: server presented
 * sha256:..."), PF_FAIL_TEMP if the connection dropped during the handshake.
 */
int		 tls_handshake(struct tls *t, struct pf_error *err);

/*
 * Read up to len bytes of application data.  Returns > 0 bytes, 0 at end of
 * stream (close_notify, and also a TCP close without close_notify: the POP3
 * layer, which knows where messages end, decides whether that was early),
 * TLS_WANT_READ / TLS_WANT_WRITE, or TLS_ERROR with err set: PF_FAIL_TEMP
 * for a socket error such as a reset, PF_FAIL_TLS for a TLS protocol error.
 */
ssize_t		 tls_read(struct tls *t, void *buf, size_t len,
		    struct pf_error *err);

/*
 * Write up to len (> 0) bytes; may write fewer (partial writes are enabled,
 * and the buffer may move between calls).  Returns the count written (> 0),
 * TLS_WANT_READ / TLS_WANT_WRITE, or TLS_ERROR with err set (PF_FAIL_TEMP
 * for a socket error, PF_FAIL_TLS for a TLS protocol error).
 */
ssize_t		 tls_write(struct tls *t, const void *buf, size_t len,
		    struct pf_error *err);

/*
 * Describe the established session: protocol version, cipher and the
 * "sha256:AA:BB:..." fingerprint of the peer's leaf certificate (the form
 * `openssl x509 -fingerprint -sha256` prints, with our prefix).  Fields are
 * "" if the handshake has not completed.
 */
void		 tls_describe(const struct tls *t, struct tls_info *info);

/*
 * Parse a serialised session (tls_session_export's) if it is worth
 * offering now: it parses, OpenSSL calls it resumable, it is within its
 * lifetime and TLS_RESUME_MAX_AGE, and its server certificate has not
 * expired.  Returns it (free with tls_stored_free; the DER may be wiped
 * at once), or NULL with a short reason in why (for a debug line).
 * Parsing once matters: OpenSSL 3 spends about 1.5 million instructions
 * decoding a session (its certificate's key), as much as the rest of a
 * resumed handshake's client side.
 */
struct tls_stored *tls_stored_parse(const unsigned char *der, size_t len,
		    char *why, size_t whysize);
void		 tls_stored_free(struct tls_stored **sp);

/* Whether the established session was resumed (no certificate sent). */
bool		 tls_resumed(const struct tls *t);

/*
 * The newest session the server sent (a TLS 1.3 ticket arrives after the
 * handshake, with the first data read), serialised into *der_r (malloc'ed;
 * it holds the resumption secret: the caller wipes and frees it), if
 * ts->keep_session was set and the peer was verified: its chain and name,
 * or the pin.  Never with tls_verify = false and no pin.  Returns 0, or -1
 * if there is none (nothing is set then).
 */
int		 tls_session_export(const struct tls *t, unsigned char **der_r,
		    size_t *len_r);

/*
 * Send close_notify once, without waiting for anything (best effort), free
 * the session and its reference to its SSL_CTX, and set *t to NULL.  Does not close the fd.
 * NULL and *t == NULL are accepted.
 */
void		 tls_free(struct tls **t);

#endif
