/*
 * tls.c - the TLS client, the only OpenSSL user for TLS (RFC 8446/5246;
 * RFC 8314 implicit TLS, RFC 2595 STLS; RFC 6066 §3 for SNI; RFC 6125 host
 * names, checked by OpenSSL itself).
 *
 * The SSL_CTX and certificate store are built once per process for each
 * set of settings and shared (ca_store_get, ctx_find below); everything of
 * one account (host name, pin, sessions) is on its own SSL object and
 * struct tls, so no account's CA file or pin leaks into another's.  The
 * socket is
 * non-blocking and reached through a tiny private BIO (send with
 * MSG_NOSIGNAL: no SIGPIPE); every call that would block reports
 * TLS_WANT_READ/TLS_WANT_WRITE and net.c waits with its deadline.
 *
 * OpenSSL's thread-local error queue is cleared before each call and drained
 * into our error object after each failure, so no stale error is blamed on
 * the next operation.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "log.h"
#include "params.h"
#include "tls.h"
#include "xmalloc.h"

struct tls {
	SSL_CTX		*ctx;
	SSL		*ssl;
	BIO_METHOD	*bio_method;
	int		 fd;		/* borrowed */
	bool		 eof;		/* the socket BIO read end of stream */
	bool		 fatal;		/* a fatal error: no close_notify */
	bool		 established;
	char		*host;		/* for messages */
	bool		 check_chain;	/* chain and host name verified */
	bool		 ip;		/* host is an IP literal */
	bool		 keep;		/* keep_session, and something verified */
	SSL_SESSION	*newest;	/* the newest session the server sent */
	char		*ca_file;	/* loaded by deferred_verify, if needed */
	bool		 ca_loaded;
	char		 ca_error[256];	/* why it would not load */
	bool		 has_fingerprint;
	unsigned char	 fingerprint[32];
	/* The first verification failure, recorded by verify_cb. */
	int		 verify_error;
	int		 verify_depth;
	char		 names[TLS_NAMES_MAX];	/* leaf's SANs or CN (untrusted, sanitised) */
	struct tls_cert_info *rejected;	/* tls_settings.rejected */
};

/* --- the socket BIO: recv/send on a non-blocking fd, no SIGPIPE --- */

static int
bio_sock_write(BIO *b, const char *buf, int len)
{
	struct tls *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	do
		n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)n;
}

static int
bio_sock_read(BIO *b, char *buf, int len)
{
	struct tls *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	do
		n = recv(t->fd, buf, (size_t)len, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		return -1;
	}
	if (n == 0)
		t->eof = true;
	return (int)n;
}

static long
bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls *t = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		/* ssl3_read_n asks this to tell an EOF from an error. */
		return t->eof ? 1 : 0;
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = t->fd;
		return t->fd;
	default:
		return 0;
	}
}

static int
bio_sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int
bio_sock_destroy(BIO *b)
{
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *
bio_sock_method(void)
{
	BIO_METHOD *m;

	if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "popfetch socket")) == NULL)
		return NULL;
	if (BIO_meth_set_write(m, bio_sock_write) != 1 ||
	    BIO_meth_set_read(m, bio_sock_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_sock_ctrl) != 1 ||
	    BIO_meth_set_create(m, bio_sock_create) != 1 ||
	    BIO_meth_set_destroy(m, bio_sock_destroy) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* --- messages --- */

/* Append "; reason" for each entry of OpenSSL's error queue, emptying it. */
static void
drain_errors(char *buf, size_t size)
{
	unsigned long e;
	size_t len;

	if (size == 0)
		return;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		const char *reason;
		char tmp[256];

		if (ERR_SYSTEM_ERROR(e))
			reason = strerror(ERR_GET_REASON(e));
		else if ((reason = ERR_reason_error_string(e)) == NULL) {
			ERR_error_string_n(e, tmp, sizeof(tmp));
			reason = tmp;
		}
		len = strlen(buf);
		if (len + 1 < size)
			snprintf(buf + len, size - len, "%s%s",
			    len > 0 ? "; " : "", reason);
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "unknown error");
}

/* Copy untrusted certificate text, replacing what is not printable. */
static void
append_name(char *out, size_t size, const unsigned char *s, size_t n)
{
	size_t len = strlen(out), i;

	if (len > 0 && len + 2 < size) {
		memcpy(out + len, ", ", 3);
		len += 2;
	}
	for (i = 0; i < n && len + 1 < size; i++)
		out[len++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	out[len] = '\0';
	if (i < n && size > 4)
		memcpy(out + size - 4, "...", 4);
}

/* What a certificate is for: its DNS and IP subjectAltNames, else its CN. */
static void
describe_names(X509 *cert, char *out, size_t size)
{
	GENERAL_NAMES *sans;
	X509_NAME *subject;
	int i, idx;

	out[0] = '\0';
	if (cert == NULL)
		goto done;
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		char ip[INET6_ADDRSTRLEN];
		const unsigned char *d;
		int n;

		if (gn->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(gn->d.dNSName);
			n = ASN1_STRING_length(gn->d.dNSName);
			append_name(out, size, d, (size_t)n);
		} else if (gn->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(gn->d.iPAddress);
			n = ASN1_STRING_length(gn->d.iPAddress);
			if ((n == 4 && inet_ntop(AF_INET, d, ip, sizeof(ip))) ||
			    (n == 16 && inet_ntop(AF_INET6, d, ip, sizeof(ip))))
				append_name(out, size, (const unsigned char *)ip,
				    strlen(ip));
		}
	}
	GENERAL_NAMES_free(sans);
	if (out[0] != '\0')
		return;
	/* No usable subjectAltName: name the subject's CN. */
	subject = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (idx >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(
		    X509_NAME_get_entry(subject, idx));

		append_name(out, size, ASN1_STRING_get0_data(cn),
		    (size_t)ASN1_STRING_length(cn));
	}
done:
	if (out[0] == '\0')
		snprintf(out, size, "no host name at all");
}

/* "sha256:AA:BB:..." from a 32-byte digest. */
static void
format_fingerprint(const unsigned char md[32], char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o;

	if (size < 7 + 32 * 3) {
		if (size > 0)
			out[0] = '\0';
		return;
	}
	memcpy(out, "sha256:", 7);
	o = 7;
	for (i = 0; i < 32; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 0x0f];
	}
	out[o] = '\0';
}

/* An ASN1_TIME as "YYYY-MM-DD HH:MM:SS UTC" ("?" if it will not parse). */
static void
format_time(const ASN1_TIME *at, char *out, size_t size)
{
	struct tm tm;

	if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1 ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, size, "?");
}

/* A name in RFC 2253 form, cut to fit. */
static void
format_name(const X509_NAME *name, char *out, size_t size)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	out[0] = '\0';
	if (mem == NULL)
		return;
	if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(mem, &p)) > 0)
		snprintf(out, size, "%.*s", (int)n, p);
	BIO_free(mem);
}

/* What `check` shows of a certificate it will not trust (tls_settings's
 * `rejected`): the first one only. */
static void
record_rejected(struct tls *t, X509 *cert)
{
	struct tls_cert_info *ci = t->rejected;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (ci == NULL || ci->valid || cert == NULL)
		return;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return;
	format_fingerprint(md, ci->fingerprint, sizeof(ci->fingerprint));
	format_name(X509_get_subject_name(cert), ci->subject,
	    sizeof(ci->subject));
	format_name(X509_get_issuer_name(cert), ci->issuer, sizeof(ci->issuer));
	format_time(X509_get0_notBefore(cert), ci->not_before,
	    sizeof(ci->not_before));
	format_time(X509_get0_notAfter(cert), ci->not_after,
	    sizeof(ci->not_after));
	ci->valid = true;
	ERR_clear_error();
}

static bool
is_host_mismatch(int verify_error)
{
	return verify_error == X509_V_ERR_HOSTNAME_MISMATCH ||
	    verify_error == X509_V_ERR_IP_ADDRESS_MISMATCH;
}

/*
 * Keep the first verification failure (and, for a name mismatch, what the
 * leaf is for) so the message names the real reason; OpenSSL stops at it.
 */
static int
verify_cb(int ok, X509_STORE_CTX *sctx)
{
	SSL *ssl;
	struct tls *t;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (t = SSL_get_app_data(ssl)) == NULL)
		return ok;
	if (t->verify_error == X509_V_OK) {
		t->verify_error = X509_STORE_CTX_get_error(sctx);
		t->verify_depth = X509_STORE_CTX_get_error_depth(sctx);
		if (is_host_mismatch(t->verify_error))
			describe_names(X509_STORE_CTX_get0_cert(sctx), t->names,
			    sizeof(t->names));
		/* The server's own certificate, whatever level failed. */
		record_rejected(t, X509_STORE_CTX_get0_cert(sctx));
	}
	return ok;
}

static bool
is_ip_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
}

/* --- resumption (doc/DESIGN.md §12) --- */

/*
 * OpenSSL hands us every session the server gives: with TLS 1.3 a ticket
 * after the handshake (with the first read), with TLS 1.2 during it, so
 * before check_peer; tls_session_export lets none out unless the handshake
 * ended verified.  The newest one wins.
 */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls *t = SSL_get_app_data(ssl);

	if (t == NULL || !t->keep)
		return 0;
	SSL_SESSION_free(t->newest);
	t->newest = sess;
	return 1;	/* the reference is ours now */
}

struct tls_stored {
	SSL_SESSION	*sess;
};

struct tls_stored *
tls_stored_parse(const unsigned char *der, size_t len, char *why,
    size_t whysize)
{
	const unsigned char *p = der;
	struct tls_stored *st;
	SSL_SESSION *sess = NULL;
	X509 *peer;
	time_t now = time(NULL), start;
	long life;
	bool ok = false;

	ERR_clear_error();
	if (len > LONG_MAX || (sess = d2i_SSL_SESSION(NULL, &p,
	    (long)len)) == NULL || p != der + len) {
		SSL_SESSION_free(sess);
		snprintf(why, whysize, "cannot parse the stored session");
		ERR_clear_error();
		return NULL;
	}
	start = (time_t)SSL_SESSION_get_time(sess);
	life = SSL_SESSION_get_timeout(sess);
	if (life > TLS_RESUME_MAX_AGE)
		life = TLS_RESUME_MAX_AGE;
	peer = SSL_SESSION_get0_peer(sess);
	if (!SSL_SESSION_is_resumable(sess))
		snprintf(why, whysize, "the stored session is not resumable");
	else if (start > now + 60 || now - start >= life)
		snprintf(why, whysize, "the stored session has expired");
	else if (peer == NULL)
		snprintf(why, whysize, "the stored session has no certificate");
	else if (X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
		snprintf(why, whysize, "the server's certificate has expired");
	else
		ok = true;
	ERR_clear_error();
	if (!ok) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	st = xmalloc(sizeof(*st));
	st->sess = sess;
	return st;
}

void
tls_stored_free(struct tls_stored **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	SSL_SESSION_free((*sp)->sess);	/* OpenSSL wipes its secret */
	free(*sp);
	*sp = NULL;
}

bool
tls_resumed(const struct tls *t)
{
	return t != NULL && t->established && SSL_session_reused(t->ssl) == 1;
}

int
tls_session_export(const struct tls *t, unsigned char **der_r, size_t *len_r)
{
	unsigned char *der, *p;
	int n;

	if (t == NULL || !t->keep || !t->established || t->newest == NULL ||
	    !SSL_SESSION_is_resumable(t->newest))
		return -1;
	ERR_clear_error();
	if ((n = i2d_SSL_SESSION(t->newest, NULL)) <= 0) {
		ERR_clear_error();
		return -1;
	}
	p = der = xmalloc((size_t)n);
	if (i2d_SSL_SESSION(t->newest, &p) != n) {
		OPENSSL_cleanse(der, (size_t)n);
		free(der);
		ERR_clear_error();
		return -1;
	}
	*der_r = der;
	*len_r = (size_t)n;
	return 0;
}

/*
 * The certificate stores, one per CA file (by path and by the file's
 * identity, so a file replaced or edited since is loaded again) and one
 * for the system store, each loaded once per process and shared by every
 * account that uses it (SSL_CTX_set1_cert_store; an X509_STORE is
 * reference-counted and only read by verification).  Loading is what
 * costs: a CA file is parsed in full, and the system default paths
 * parse the distribution's whole bundle.  A file that will not load is
 * not kept, so each account that uses it reports the error as before.
 * Used from the main thread only (the TLS side of an account never runs
 * in a worker thread).
 */
struct ca_store {
	struct ca_store	*next;
	char		*path;		/* NULL: the system default store */
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	X509_STORE	*store;
};

static struct ca_store *ca_stores;

static bool
same_file(const struct ca_store *c, const struct stat *st)
{
	return c->dev == st->st_dev && c->ino == st->st_ino &&
	    c->size == st->st_size && c->mtime.tv_sec == st->st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The kept store for path (NULL: the system one) if it is still that
 * file, else NULL; a stale entry is dropped (contexts using it keep their
 * own reference). */
static X509_STORE *
ca_store_find(const char *path, const struct stat *st)
{
	struct ca_store **cp, *c;

	for (cp = &ca_stores; (c = *cp) != NULL; cp = &c->next) {
		if ((path == NULL) != (c->path == NULL) ||
		    (path != NULL && strcmp(path, c->path) != 0))
			continue;
		if (path == NULL || same_file(c, st))
			return c->store;
		*cp = c->next;
		X509_STORE_free(c->store);
		free(c->path);
		free(c);
		return NULL;
	}
	return NULL;
}

/* Keep store (taking a reference) as path's, identified by *st. */
static void
ca_store_keep(const char *path, const struct stat *st, X509_STORE *store)
{
	struct ca_store *c;

	if (X509_STORE_up_ref(store) != 1)
		return;
	c = xcalloc(1, sizeof(*c));
	c->path = path != NULL ? xstrdup(path) : NULL;
	if (st != NULL) {
		c->dev = st->st_dev;
		c->ino = st->st_ino;
		c->size = st->st_size;
		c->mtime = st->st_mtim;
	}
	c->store = store;
	c->next = ca_stores;
	ca_stores = c;
}

/*
 * The store for CA file path (NULL: the system default paths), loaded if
 * not kept yet; borrowed (the cache holds a reference).  NULL if it will
 * not load, with OpenSSL's reason in why.
 */
static X509_STORE *
ca_store_get(const char *path, char *why, size_t whysize)
{
	struct stat st;
	X509_STORE *store;
	int ok;

	why[0] = '\0';
	if (path != NULL && stat(path, &st) == -1) {
		snprintf(why, whysize, "%s", strerror(errno));
		return NULL;
	}
	if ((store = ca_store_find(path, &st)) != NULL)
		return store;
	ERR_clear_error();
	if ((store = X509_STORE_new()) == NULL) {
		drain_errors(why, whysize);
		return NULL;
	}
	ok = path != NULL ? X509_STORE_load_file(store, path) :
	    X509_STORE_set_default_paths(store);
	if (ok != 1) {
		drain_errors(why, whysize);
		X509_STORE_free(store);
		return NULL;
	}
	ca_store_keep(path, path != NULL ? &st : NULL, store);
	X509_STORE_free(store);		/* the cache's reference remains */
	return store;
}

/* The store kept for path, if any, without loading it. */
static X509_STORE *
ca_store_peek(const char *path)
{
	struct stat st;

	if (path != NULL && stat(path, &st) == -1)
		return NULL;
	return ca_store_find(path, &st);
}

void
tls_preload_ca(const char *ca_file)
{
	char why[256];

	(void)ca_store_get(ca_file, why, sizeof(why));
	ERR_clear_error();
}

/*
 * The certificate check when a session is offered: OpenSSL 3 spends about
 * 1.5 million instructions loading even a one-certificate CA file, as
 * much as a resumed handshake's own work, and a resumed session verifies
 * nothing.  So the file is loaded here, when the server sent a
 * certificate after all (a full handshake), into the store the check is
 * about to use; then the usual check.
 */
static int
deferred_verify(X509_STORE_CTX *sctx, void *arg)
{
	struct tls *t = arg;

	if (t->ca_file != NULL && !t->ca_loaded) {
		struct stat st;
		bool have_st;

		t->ca_loaded = true;
		/* The context's own store, still empty: loaded here, it is
		 * then kept for the next account with this file. */
		have_st = stat(t->ca_file, &st) == 0;
		if (X509_STORE_load_file(SSL_CTX_get_cert_store(t->ctx),
		    t->ca_file) != 1) {
			drain_errors(t->ca_error, sizeof(t->ca_error));
			if (t->ca_error[0] == '\0')
				snprintf(t->ca_error, sizeof(t->ca_error),
				    "no certificate in it");
			X509_STORE_CTX_set_error(sctx,
			    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
			return 0;
		}
		if (have_st && ca_store_find(t->ca_file, &st) == NULL)
			ca_store_keep(t->ca_file, &st,
			    SSL_CTX_get_cert_store(t->ctx));
	}
	return X509_verify_cert(sctx);
}

/*
 * The client contexts, one per process for each set of settings that an
 * SSL_CTX holds: chain check or none, sessions kept or not, and the
 * certificate store (a kept one, so the pointer names one CA file's
 * contents).  SSL_CTX_new costs about as much as loading a small CA file
 * (OpenSSL 3 loads its cipher, group and signature tables per context).
 * Nothing of one connection is in a shared context: the host name and
 * its check are set on the SSL (SSL_set1_host, its own verify
 * parameters), the pin is checked by check_peer on the connection, the
 * verify callback and new_session_cb find their connection through the
 * SSL's app data, and no session is stored in the context
 * (SSL_SESS_CACHE_NO_INTERNAL_STORE, or no client caching at all).
 * The one context with a connection in it, a deferred CA file load's
 * (deferred_verify's argument), is never kept.  Main thread only.
 */
struct ctx_kept {
	struct ctx_kept	*next;
	bool		 check_chain;
	bool		 keep;
	X509_STORE	*store;		/* NULL without check_chain */
	SSL_CTX		*ctx;
};

static struct ctx_kept *ctx_kept;

/* A new reference to the kept context for these settings, or NULL. */
static SSL_CTX *
ctx_find(bool check_chain, bool keep, X509_STORE *store)
{
	struct ctx_kept *k;

	for (k = ctx_kept; k != NULL; k = k->next)
		if (k->check_chain == check_chain && k->keep == keep &&
		    k->store == store)
			return SSL_CTX_up_ref(k->ctx) == 1 ? k->ctx : NULL;
	return NULL;
}

/* Keep ctx for the next connections with these settings; false if it
 * could not be (then it goes with its connection). */
static bool
ctx_keep(bool check_chain, bool keep, X509_STORE *store, SSL_CTX *ctx)
{
	struct ctx_kept *k;

	if (SSL_CTX_up_ref(ctx) != 1)
		return false;
	k = xcalloc(1, sizeof(*k));
	k->check_chain = check_chain;
	k->keep = keep;
	k->store = store;
	k->ctx = ctx;
	k->next = ctx_kept;
	ctx_kept = k;
	return true;
}

/* --- chains verified in this process (doc/DESIGN.md §12) --- */

/*
 * A run over many accounts on one server is shown the same certificate
 * chain for the same host name account after account; verifying it again
 * (issuer lookup, signatures, names, dates) would give the same answer,
 * which depends on nothing else: the trust store is the kept context's,
 * built once per process, and the flags and purpose are the same for
 * every connection of that context.  So a success is kept, keyed by the
 * context, the host name (or IP literal) checked and the chain exactly as
 * presented (DER, every certificate in order), with the window in which
 * every certificate of the verified chain is valid; a later handshake
 * with all of them equal, inside that window, is accepted without
 * verifying again (valid as X509_verify_cert has it: notBefore <= now <
 * notAfter).  Anything else is verified in full, and a failure is
 * never kept, so its details still reach the message (verify_cb).  Kept
 * contexts only (ctx_keep), which live as long as the process, and only
 * in the process that verified (the main thread: the list is not locked).
 */
struct chain_ok {
	struct chain_ok	*next;
	const SSL_CTX	*ctx;
	char		*host;
	unsigned char	*der;
	size_t		 len;
	time_t		 not_before;	/* the latest notBefore of the chain */
	time_t		 not_after;	/* the earliest notAfter */
};

static struct chain_ok *chains_ok;
static size_t nchains_ok;

/* The presented chain's DER, every certificate in order, into a new
 * buffer; NULL if it cannot be encoded or is larger than TLS_CHAIN_MAX. */
static unsigned char *
chain_der(X509_STORE_CTX *sctx, size_t *len_r)
{
	STACK_OF(X509) *sk = X509_STORE_CTX_get0_untrusted(sctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
	unsigned char *der, *p;
	size_t total = 0;
	int i, n;

	if (leaf == NULL)
		return NULL;
	n = sk != NULL ? sk_X509_num(sk) : 0;
	for (i = -1; i < n; i++) {
		int len = i2d_X509(i < 0 ? leaf : sk_X509_value(sk, i), NULL);

		if (len <= 0 || (size_t)len > TLS_CHAIN_MAX - total)
			return NULL;
		total += (size_t)len;
	}
	der = p = xmalloc(total);
	for (i = -1; i < n; i++)
		if (i2d_X509(i < 0 ? leaf : sk_X509_value(sk, i), &p) <= 0) {
			free(der);
			return NULL;
		}
	*len_r = total;
	return der;
}

/* An ASN1_TIME as seconds since the epoch; false if it will not convert. */
static bool
asn1_seconds(const ASN1_TIME *at, time_t *t_r)
{
	struct tm tm;

	if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1)
		return false;
	*t_r = timegm(&tm);
	return *t_r != (time_t)-1;
}

/* Keep a chain X509_verify_cert has just accepted; der is taken. */
static void
chain_keep(X509_STORE_CTX *sctx, const SSL_CTX *ctx, const char *host,
    unsigned char *der, size_t len)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sctx);
	struct chain_ok *c;
	time_t nb, na, latest = 0, earliest = 0;
	int i;

	if (chain == NULL || sk_X509_num(chain) == 0 ||
	    nchains_ok >= TLS_CHAINS_KEPT) {
		free(der);
		return;
	}
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if (!asn1_seconds(X509_get0_notBefore(x), &nb) ||
		    !asn1_seconds(X509_get0_notAfter(x), &na)) {
			free(der);
			return;
		}
		if (i == 0 || nb > latest)
			latest = nb;
		if (i == 0 || na < earliest)
			earliest = na;
	}
	c = xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->host = xstrdup(host);
	c->der = der;
	c->len = len;
	c->not_before = latest;
	c->not_after = earliest;
	c->next = chains_ok;
	chains_ok = c;
	nchains_ok++;
}

/* Verified before, for this context and host, and still in its window? */
static bool
chain_known(const SSL_CTX *ctx, const char *host, const unsigned char *der,
    size_t len)
{
	const struct chain_ok *c;
	time_t now = time(NULL);

	for (c = chains_ok; c != NULL; c = c->next)
		if (c->ctx == ctx && c->len == len &&
		    strcmp(c->host, host) == 0 && memcmp(c->der, der, len) == 0)
			return now >= c->not_before && now < c->not_after;
	return false;
}

/* The certificate check of a kept context's handshakes. */
static int
cached_verify(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	unsigned char *der;
	size_t len = 0;
	int rc;

	(void)arg;
	if (t == NULL || (der = chain_der(sctx, &len)) == NULL)
		return X509_verify_cert(sctx);
	if (chain_known(t->ctx, t->host, der, len)) {
		free(der);
		log_debug("TLS: %s: the same certificate chain as verified "
		    "earlier in this run", t->host);
		return 1;
	}
	rc = X509_verify_cert(sctx);
	if (rc == 1 && X509_STORE_CTX_get_error(sctx) == X509_V_OK)
		chain_keep(sctx, t->ctx, t->host, der, len);
	else
		free(der);
	return rc;
}

/* --- the session --- */

void
tls_warm_up(void)
{
	SSL_CTX *ctx;

	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG |
	    OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
	    NULL) != 1) {
		ERR_clear_error();
		return;
	}
	/* A context fetches its ciphers and digests from the providers;
	 * OpenSSL keeps what it fetched for the next one. */
	if ((ctx = SSL_CTX_new(TLS_client_method())) != NULL)
		SSL_CTX_free(ctx);
	ERR_clear_error();
}

struct tls *
tls_new(int fd, const struct tls_settings *ts, struct pf_error *err)
{
	struct tls *t;
	BIO *bio = NULL;
	X509_STORE *store;
	bool check_chain, deferred, ip;
	char why[512];

	t = xcalloc(1, sizeof(*t));
	t->fd = fd;
	t->verify_error = X509_V_OK;
	t->rejected = ts->rejected;
	if (ts->host == NULL || ts->host[0] == '\0') {
		pf_error_set(err, PF_FAIL_INTERNAL, "TLS: no server name given");
		goto fail;
	}
	t->host = xstrdup(ts->host);
	t->has_fingerprint = ts->has_fingerprint;
	memcpy(t->fingerprint, ts->fingerprint, sizeof(t->fingerprint));
	check_chain = ts->verify && !ts->has_fingerprint;
	ip = is_ip_literal(ts->host);
	t->check_chain = check_chain;
	t->ip = ip;
	/* Only what was verified may be resumed later: tls_verify = false
	 * without a pin verifies nothing. */
	t->keep = ts->keep_session && (check_chain || ts->has_fingerprint);

	/* The certificate store first: a shared one, or none yet when the
	 * CA file's load is deferred. */
	ERR_clear_error();
	store = NULL;
	deferred = false;
	if (check_chain && ts->ca_file != NULL) {
		/* errno says it best when the file cannot be read */
		if (access(ts->ca_file, R_OK) == -1) {
			pf_error_set_errno(err, PF_FAIL_CONFIG,
			    "tls_ca_file %s", ts->ca_file);
			goto fail;
		}
		if ((store = ca_store_peek(ts->ca_file)) != NULL)
			;	/* loaded already in this process */
		else if (ts->session != NULL)
			/* Offering a session: load the file only if a
			 * certificate comes to be verified (doc/DESIGN.md
			 * §12). */
			deferred = true;
		else if ((store = ca_store_get(ts->ca_file, why,
		    sizeof(why))) == NULL) {
			pf_error_set(err, PF_FAIL_CONFIG,
			    "tls_ca_file %s: cannot load: %s", ts->ca_file, why);
			goto fail;
		}
	} else if (check_chain &&
	    (store = ca_store_get(NULL, why, sizeof(why))) == NULL) {
		pf_error_set(err, PF_FAIL_TLS, "TLS setup for %s failed: %s",
		    ts->host, why);
		goto fail;
	}

	/* The context: one kept per process for the same settings, except
	 * a deferred load's (its callback holds this connection). */
	if (!deferred && (t->ctx = ctx_find(check_chain, t->keep,
	    store)) != NULL)
		goto have_ctx;
	if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1)
		goto ssl_fail;
	if (check_chain) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, verify_cb);
		if (deferred) {
			t->ca_file = xstrdup(ts->ca_file);
			SSL_CTX_set_cert_verify_callback(t->ctx,
			    deferred_verify, t);
		} else
			SSL_CTX_set1_cert_store(t->ctx, store);
	} else
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	if (t->keep) {
		/* No cache in the SSL_CTX (shared by connections): the
		 * callback takes each session to its own connection's
		 * struct tls (SSL app data), tls_session_export hands it
		 * to fetcher/session.c, which stores it. */
		SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(t->ctx, new_session_cb);
	}
	/* A kept context lives as long as the process, so the chains it
	 * verified can be keyed by it (cached_verify). */
	if (!deferred && ctx_keep(check_chain, t->keep, store, t->ctx) &&
	    check_chain)
		SSL_CTX_set_cert_verify_callback(t->ctx, cached_verify, NULL);
have_ctx:
	if ((t->ssl = SSL_new(t->ctx)) == NULL)
		goto ssl_fail;
	SSL_set_app_data(t->ssl, t);
	SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read what the socket has, several records per read(2), instead of
	 * a record header and then its body: half the system calls on a
	 * big message.  tls_read serves the buffer before it asks to poll. */
	SSL_set_default_read_buffer_len(t->ssl, TLS_READ_BUF);
	SSL_set_read_ahead(t->ssl, 1);
	/* RFC 6066 §3: no SNI for an IP literal. */
	if (!ip && SSL_set_tlsext_host_name(t->ssl, ts->host) != 1)
		goto ssl_fail;
	if (check_chain) {
		if (ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
			    ts->host) != 1)
				goto ssl_fail;
		} else {
			/* RFC 9525 §6.3: the subjectAltName only, never
			 * the subject's CN, even without a DNS name. */
			SSL_set_hostflags(t->ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
			    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
			if (SSL_set1_host(t->ssl, ts->host) != 1)
				goto ssl_fail;
		}
	}

	if ((t->bio_method = bio_sock_method()) == NULL ||
	    (bio = BIO_new(t->bio_method)) == NULL)
		goto ssl_fail;
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);	/* the SSL owns the BIO now */
	SSL_set_connect_state(t->ssl);
	/* Offered only; the server may still want a full handshake, which
	 * is then verified as usual.  A session that will not set is not an
	 * error: a full handshake. */
	if (ts->session != NULL) {
		(void)SSL_set_session(t->ssl, ts->session->sess);
		ERR_clear_error();
	}
	return t;

ssl_fail:
	drain_errors(why, sizeof(why));
	pf_error_set(err, PF_FAIL_TLS, "TLS setup for %s failed: %s",
	    ts->host != NULL ? ts->host : "?", why);
fail:
	t->fatal = true;
	tls_free(&t);
	return NULL;
}

/*
 * Turn a failed SSL_* call into TLS_WANT_* or TLS_ERROR with err set.
 * `what` names the operation for the message; saved_errno is errno right
 * after the call.  *eof_r (if not NULL) is set when the failure is an end of
 * stream rather than an error.
 */
static int
classify(struct tls *t, int ret, int saved_errno, const char *what,
    bool *eof_r, struct pf_error *err)
{
	unsigned long e;
	const char *hint;
	char why[512];

	if (eof_r != NULL)
		*eof_r = false;
	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify: a clean end. */
		if (eof_r != NULL) {
			*eof_r = true;
			return TLS_ERROR;
		}
		ERR_clear_error();
		return pf_error_set(err, PF_FAIL_TEMP,
		    "%s %s: connection closed by the server", what, t->host);
	case SSL_ERROR_SYSCALL:
		t->fatal = true;
		ERR_clear_error();
		if (saved_errno == 0 || t->eof) {
			if (eof_r != NULL) {
				*eof_r = true;
				return TLS_ERROR;
			}
			return pf_error_set(err, PF_FAIL_TEMP,
			    "%s %s: connection closed by the server", what,
			    t->host);
		}
		return pf_error_set(err, PF_FAIL_TEMP, "%s %s: %s", what,
		    t->host, strerror(saved_errno));
	case SSL_ERROR_SSL:
		t->fatal = true;
		e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			/*
			 * A TCP close without close_notify.  For reads, an
			 * end of stream: POP3 knows whether data was missing.
			 */
			ERR_clear_error();
			if (eof_r != NULL) {
				*eof_r = true;
				return TLS_ERROR;
			}
			return pf_error_set(err, PF_FAIL_TEMP,
			    "%s %s: connection closed by the server", what,
			    t->host);
		}
		/* A plain-text server answering our hello: say so. */
		hint = ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ?
		    " (does the server speak TLS on this port?)" : "";
		drain_errors(why, sizeof(why));
		return pf_error_set(err, PF_FAIL_TLS, "%s %s failed: %s%s", what,
		    t->host, why, hint);
	default:
		t->fatal = true;
		drain_errors(why, sizeof(why));
		return pf_error_set(err, PF_FAIL_TLS, "%s %s failed: %s", what,
		    t->host, why);
	}
}

/* After the handshake: the pin, or a belt-and-braces look at the result. */
static int
check_peer(struct tls *t, struct pf_error *err)
{
	const X509 *peer = SSL_get0_peer_certificate(t->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char fp[128];

	if (peer == NULL)
		return pf_error_set(err, PF_FAIL_TLS,
		    "TLS handshake with %s: the server presented no certificate",
		    t->host);
	if (t->has_fingerprint) {
		if (X509_digest(peer, EVP_sha256(), md, &mdlen) != 1 ||
		    mdlen != 32) {
			char why[256];

			drain_errors(why, sizeof(why));
			return pf_error_set(err, PF_FAIL_TLS,
			    "TLS handshake with %s: cannot hash the certificate: %s",
			    t->host, why);
		}
		if (CRYPTO_memcmp(md, t->fingerprint, 32) != 0) {
			record_rejected(t, (X509 *)(uintptr_t)peer);
			format_fingerprint(md, fp, sizeof(fp));
			return pf_error_set(err, PF_FAIL_TLS,
			    "TLS handshake with %s: certificate fingerprint mismatch: server presented %s",
			    t->host, fp);
		}
		return 0;
	}
	if (SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE &&
	    SSL_get_verify_result(t->ssl) != X509_V_OK)
		return pf_error_set(err, PF_FAIL_TLS,
		    "TLS handshake with %s: certificate verify failed: %s",
		    t->host, X509_verify_cert_error_string(
		    SSL_get_verify_result(t->ssl)));
	/*
	 * A resumed session brings its certificate and verify result from
	 * the first handshake, and OpenSSL checks neither again.  The stored
	 * session was for this very host (its settings digest, DESIGN §12),
	 * so this cannot fail unless something is badly wrong; the name
	 * check costs microseconds, and a resumed session must never be
	 * trusted more than a new one.  (A pin is checked above, on the
	 * session's certificate, resumed or not.)
	 */
	if (t->check_chain && SSL_session_reused(t->ssl) == 1 &&
	    (t->ip ? X509_check_ip_asc((X509 *)(uintptr_t)peer, t->host, 0) :
	    X509_check_host((X509 *)(uintptr_t)peer, t->host, 0,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL)) != 1) {
		describe_names((X509 *)(uintptr_t)peer, t->names,
		    sizeof(t->names));
		return pf_error_set(err, PF_FAIL_TLS,
		    "TLS handshake with %s: host name mismatch: certificate is for %s (resumed session)",
		    t->host, t->names);
	}
	return 0;
}

int
tls_handshake(struct tls *t, struct pf_error *err)
{
	int ret, saved_errno;
	long verr;

	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(t->ssl);
	saved_errno = errno;
	if (ret == 1) {
		if (check_peer(t, err) == -1)
			return TLS_ERROR;
		t->established = true;
		return 0;
	}

	/* The CA file, loaded late (deferred_verify), would not load: the
	 * same configuration error as at tls_new. */
	if (t->ca_error[0] != '\0') {
		t->fatal = true;
		ERR_clear_error();
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "tls_ca_file %s: cannot load: %s", t->ca_file, t->ca_error);
	}

	/*
	 * A failed verification: say why in words, not as a queue dump.
	 * (Without SSL_VERIFY_PEER a verify result is recorded but moot.)
	 */
	verr = t->verify_error != X509_V_OK ? t->verify_error :
	    SSL_get_verify_result(t->ssl);
	if (SSL_get_error(t->ssl, ret) == SSL_ERROR_SSL && verr != X509_V_OK &&
	    SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
		t->fatal = true;
		ERR_clear_error();
		if (is_host_mismatch((int)verr)) {
			if (t->names[0] == '\0')
				describe_names(SSL_get0_peer_certificate(t->ssl),
				    t->names, sizeof(t->names));
			return pf_error_set(err, PF_FAIL_TLS,
			    "TLS handshake with %s: host name mismatch: certificate is for %s",
			    t->host, t->names);
		}
		return pf_error_set(err, PF_FAIL_TLS,
		    "TLS handshake with %s: certificate verify failed: %s%s",
		    t->host, X509_verify_cert_error_string(verr),
		    t->verify_depth > 0 ? " (in the chain above the server's certificate)" : "");
	}
	return classify(t, ret, saved_errno, "TLS handshake with", NULL, err);
}

ssize_t
tls_read(struct tls *t, void *buf, size_t len, struct pf_error *err)
{
	size_t n = 0;
	int ret, saved_errno, r;
	bool eof;

	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(t->ssl, buf, len, &n);
	saved_errno = errno;
	if (ret == 1)
		return (ssize_t)n;
	r = classify(t, ret, saved_errno, "TLS read from", &eof, err);
	if (r == TLS_ERROR && eof)
		return 0;
	return r;
}

ssize_t
tls_write(struct tls *t, const void *buf, size_t len, struct pf_error *err)
{
	size_t n = 0;
	int ret, saved_errno;

	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(t->ssl, buf, len, &n);
	saved_errno = errno;
	if (ret == 1)
		return (ssize_t)n;
	return classify(t, ret, saved_errno, "TLS write to", NULL, err);
}

void
tls_describe(const struct tls *t, struct tls_info *info)
{
	const X509 *peer;
	const char *s;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memset(info, 0, sizeof(*info));
	if (t == NULL || !t->established)
		return;
	if ((s = SSL_get_version(t->ssl)) != NULL)
		snprintf(info->version, sizeof(info->version), "%s", s);
	if ((s = SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl))) != NULL)
		snprintf(info->cipher, sizeof(info->cipher), "%s", s);
	if ((peer = SSL_get0_peer_certificate(t->ssl)) != NULL &&
	    X509_digest(peer, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32)
		format_fingerprint(md, info->fingerprint,
		    sizeof(info->fingerprint));
	ERR_clear_error();
}

void
tls_free(struct tls **tp)
{
	struct tls *t;

	if (tp == NULL || (t = *tp) == NULL)
		return;
	*tp = NULL;
	if (t->ssl != NULL) {
		/* One close_notify, no wait for the peer's (RFC 8446 §6.1). */
		if (t->established && !t->fatal) {
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);
		}
		SSL_free(t->ssl);	/* frees the BIO too */
	}
	SSL_SESSION_free(t->newest);
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->bio_method);
	ERR_clear_error();
	free(t->ca_file);
	free(t->host);
	free(t);
}
