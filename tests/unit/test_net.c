/*
 * test_net.c - connections, deadlines and TLS verification against servers
 * run by the test itself on 127.0.0.1 (a thread per server; the TLS side is
 * plain OpenSSL, with certificates made here at start-up).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "net.h"
#include "testutil.h"

/* --- fixtures: a temp dir with a good and an expired self-signed cert --- */

struct pki {
	char		 dir[PATH_MAX];
	/* CN=localhost, SAN DNS:localhost, IP:127.0.0.1 */
	char		 cert_file[PATH_MAX];
	char		 expired_file[PATH_MAX];	/* same, expired yesterday */
	X509		*cert;
	X509		*expired;
	EVP_PKEY	*key;
	unsigned char	 fp[32];		/* SHA-256 of cert's DER */
};

static struct pki pki;

static X509 *
make_cert(EVP_PKEY *key, long not_before, long not_after, long serial)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;
	X509 *x;

	if ((x = X509_new()) == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), not_before);
	X509_gmtime_adj(X509_getm_notAfter(x), not_after);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1 ||
	    X509_sign(x, key, EVP_sha256()) == 0) {
		X509_EXTENSION_free(ext);
		X509_free(x);
		return NULL;
	}
	X509_EXTENSION_free(ext);
	return x;
}

static int
write_pem(const char *path, X509 *x)
{
	FILE *f;
	int ok;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	ok = PEM_write_X509(f, x);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

static int
setup_pki(void **state)
{
	unsigned int len = 0;

	(void)state;
	if (test_mkdtemp(pki.dir, sizeof(pki.dir), "test_net") == -1)
		return -1;
	test_pathf(pki.cert_file, sizeof(pki.cert_file), "%s/cert.pem",
	    pki.dir);
	test_pathf(pki.expired_file, sizeof(pki.expired_file), "%s/expired.pem",
	    pki.dir);
	if ((pki.key = EVP_EC_gen("P-256")) == NULL)
		return -1;
	pki.cert = make_cert(pki.key, -3600, 86400, 1);
	pki.expired = make_cert(pki.key, -2 * 86400, -86400, 2);
	if (pki.cert == NULL || pki.expired == NULL ||
	    write_pem(pki.cert_file, pki.cert) == -1 ||
	    write_pem(pki.expired_file, pki.expired) == -1)
		return -1;
	if (X509_digest(pki.cert, EVP_sha256(), pki.fp, &len) != 1 || len != 32)
		return -1;
	return 0;
}

static int
teardown_pki(void **state)
{
	(void)state;
	test_rmtree(pki.dir);
	X509_free(pki.cert);
	X509_free(pki.expired);
	EVP_PKEY_free(pki.key);
	return 0;
}

/* --- helpers --- */

/* A listening socket on 127.0.0.1, some free port. */
static int
listen_local(unsigned *port_r)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

enum srv_mode {
	SRV_GREET_ECHO,		/* "hello\r\n", echo one line, close_notify, close */
	SRV_GREET_ABRUPT,	/* "hello\r\n", then close the TCP connection only */
	SRV_HANDSHAKE_CLOSE,	/* handshake, then close at once */
};

struct server {
	int		 lfd;
	SSL_CTX		*ctx;		/* NULL: plain TCP */
	enum srv_mode	 mode;
	pthread_t	 thread;
	bool		 handshake_ok;	/* set by the thread */
	bool		 reused;	/* the server resumed a session */
};

static void *
server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = { s->lfd, POLLIN, 0 };
	struct timeval tv = { 5, 0 };
	char line[256], out[300];
	size_t used = 0;
	SSL *ssl = NULL;
	sigset_t pipe_set;
	int fd, n;

	/*
	 * OpenSSL's own socket BIO uses write(2): keep SIGPIPE off this thread
	 * (it is thread-directed), so that only the client under test could
	 * ever raise one in the process.
	 */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	/* never hang the test: give up after 5 s without a client */
	if (poll(&pfd, 1, 5000) != 1 || (fd = accept(s->lfd, NULL, NULL)) == -1)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->ctx != NULL) {
		if ((ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
		    SSL_accept(ssl) != 1)
			goto done;
		s->handshake_ok = true;
		s->reused = SSL_session_reused(ssl) == 1;
		if (s->mode == SRV_HANDSHAKE_CLOSE)
			goto done;
	}
#define SRV_WRITE(p, l) (ssl ? SSL_write(ssl, p, (int)(l)) : (int)send(fd, p, l, MSG_NOSIGNAL))
#define SRV_READ(p, l) (ssl ? SSL_read(ssl, p, (int)(l)) : (int)recv(fd, p, l, 0))
	if (SRV_WRITE("hello\r\n", 7) != 7)
		goto done;
	if (s->mode == SRV_GREET_ABRUPT)
		goto done;
	while (used < sizeof(line) - 1 && memchr(line, '\n', used) == NULL) {
		if ((n = SRV_READ(line + used, sizeof(line) - 1 - used)) <= 0)
			goto done;
		used += (size_t)n;
	}
	n = snprintf(out, sizeof(out), "echo %.*s", (int)used, line);
	SRV_WRITE(out, (size_t)n);
	if (ssl != NULL)
		SSL_shutdown(ssl);
done:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return NULL;
}

static SSL_CTX *
server_ctx(X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pki.key), 1);
	return ctx;
}

static void
server_start(struct server *s, X509 *cert, enum srv_mode mode, unsigned *port_r)
{
	memset(s, 0, sizeof(*s));
	s->lfd = listen_local(port_r);
	s->ctx = cert != NULL ? server_ctx(cert) : NULL;
	s->mode = mode;
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

/* server_start with a given SSL_CTX (shared: one ticket key for several
 * connections, as one server process has). */
static void
server_start_ctx(struct server *s, SSL_CTX *ctx, enum srv_mode mode,
    unsigned *port_r)
{
	memset(s, 0, sizeof(*s));
	s->lfd = listen_local(port_r);
	assert_int_equal(SSL_CTX_up_ref(ctx), 1);
	s->ctx = ctx;
	s->mode = mode;
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
}

/* Read until a LF (or EOF) into buf; returns the length. */
static size_t
read_line(struct conn *c, char *buf, size_t size)
{
	struct pf_error err;
	size_t used = 0;
	ssize_t n;

	while (used < size - 1 && memchr(buf, '\n', used) == NULL) {
		n = conn_read(c, buf + used, size - 1 - used, NULL, &err);
		assert_true(n >= 0);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	return used;
}

/* The next line from c must be `want`. */
static void
expect_line(struct conn *c, const char *want)
{
	char buf[256];

	read_line(c, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

/* Settings for host, verification and CA file, without a pin. */
static struct tls_settings
settings(const char *host, bool verify, const char *ca_file)
{
	struct tls_settings ts;

	memset(&ts, 0, sizeof(ts));
	ts.host = host;
	ts.verify = verify;
	ts.ca_file = ca_file;
	return ts;
}

/* "sha256:AA:BB:..." computed here, independently of tls.c. */
static void
expected_fingerprint(char *out, size_t size)
{
	size_t i, o;

	o = (size_t)snprintf(out, size, "sha256:");
	for (i = 0; i < 32; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%02X",
		    i > 0 ? ":" : "", pki.fp[i]);
}

/* Start server s (see server_start) and connect to it, with a 5 s timeout. */
static struct conn *
server_connect(struct server *s, X509 *cert, enum srv_mode mode)
{
	struct pf_error err;
	struct conn *c = NULL;
	unsigned port;

	server_start(s, cert, mode, &port);
	assert_int_equal(conn_open("127.0.0.1", port, 5, &c, &err), 0);
	return c;
}

/* server_connect, then a TLS handshake with settings ts that must work. */
static struct conn *
tls_connect(struct server *s, X509 *cert, enum srv_mode mode,
    const struct tls_settings *ts)
{
	struct pf_error err;
	struct conn *c = server_connect(s, cert, mode);

	pf_error_clear(&err);
	assert_int_equal(conn_starttls(c, ts, &err), 0);
	return c;
}

/*
 * Connect to a TLS server with cert and settings ts; returns the result of
 * conn_starttls with *err filled.  The connection is closed afterwards.
 */
static int
tls_attempt(X509 *cert, const struct tls_settings *ts, struct pf_error *err)
{
	struct server s;
	struct conn *c = server_connect(&s, cert, SRV_GREET_ECHO);
	int rc;

	pf_error_clear(err);
	rc = conn_starttls(c, ts, err);
	if (rc == -1) {
		assert_false(conn_is_tls(c));
		fprintf(stderr, "# %s -> %d: %s\n", ts->host,
		    pf_exit_code(err->category), err->what);
	}
	conn_close(&c);
	server_stop(&s);
	return rc;
}

/* A tls_attempt that verification must refuse; returns the message. */
static const char *
tls_refused(X509 *cert, const struct tls_settings *ts)
{
	static struct pf_error err;

	assert_int_equal(tls_attempt(cert, ts, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TLS);
	return err.what;
}

/* Show an error's text in the TAP log (a diagnostic line). */
static void
show(const struct pf_error *err)
{
	fprintf(stderr, "# -> %d: %s\n", pf_exit_code(err->category), err->what);
}

/* err is from a call that began at t0 and hit its 1 s deadline. */
static void
expect_timeout_1s(const struct pf_error *err, double t0)
{
	double t = test_now() - t0;

	show(err);
	assert_int_equal(err->category, PF_FAIL_TEMP);
	assert_non_null(strstr(err->what, "timed out after 1 s"));
	assert_true(t >= 0.9 && t < 2.5);
}

/* --- resumption (doc/DESIGN.md §12) --- */

/*
 * One connection to a server sharing ctx, with ts; after the greeting and
 * an echo (the TLS 1.3 ticket comes with them) returns conn_starttls's
 * result, and with *der_r the session to keep (NULL if none).
 * *resumed_r: the client saw a resumed session; *srv_reused_r: the server
 * did.
 */
static int
resume_attempt(SSL_CTX *ctx, const struct tls_settings *ts,
    unsigned char **der_r, size_t *len_r, bool *resumed_r,
    bool *srv_reused_r, struct pf_error *err)
{
	struct server s;
	struct conn *c = NULL;
	unsigned port;
	int rc;

	*der_r = NULL;
	*len_r = 0;
	server_start_ctx(&s, ctx, SRV_GREET_ECHO, &port);
	assert_int_equal(conn_open("127.0.0.1", port, 5, &c, err), 0);
	pf_error_clear(err);
	rc = conn_starttls(c, ts, err);
	*resumed_r = false;
	if (rc == 0) {
		*resumed_r = conn_tls_resumed(c);
		expect_line(c, "hello\r\n");
		assert_int_equal(conn_write(c, "ping\r\n", 6, err), 0);
		expect_line(c, "echo ping\r\n");
		if (conn_tls_session(c, der_r, len_r) == -1)
			*der_r = NULL;
	} else
		show(err);
	conn_close(&c);
	server_stop(&s);
	*srv_reused_r = s.reused;
	return rc;
}

/* A pinned session resumes; with another pin, the same session (offered,
 * and resumed by the server) is refused: the pin is checked on the
 * resumed session's certificate. */
static void
test_tls_resume_pin(void **state)
{
	SSL_CTX *ctx = server_ctx(pki.cert);
	struct tls_settings ts = settings("localhost", true, NULL);
	struct tls_stored *st;
	struct pf_error err;
	unsigned char *der, *der2;
	size_t len, len2;
	bool resumed, reused;
	char why[128];

	(void)state;
	ts.has_fingerprint = true;
	memcpy(ts.fingerprint, pki.fp, 32);
	ts.keep_session = true;
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_false(resumed);
	assert_false(reused);
	assert_non_null(der);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));

	/* Offered with the same pin: resumed, and a new ticket comes.  (A
	 * parsed session serves one connection, as in a run: each attempt
	 * parses the stored DER again.) */
	ts.session = st;
	assert_int_equal(resume_attempt(ctx, &ts, &der2, &len2, &resumed,
	    &reused, &err), 0);
	assert_true(resumed);
	assert_true(reused);
	assert_non_null(der2);
	free(der2);

	/* Another pin: the server resumes, the client refuses. */
	tls_stored_free(&st);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	free(der);
	ts.session = st;
	ts.fingerprint[0] ^= 0x01;
	assert_int_equal(resume_attempt(ctx, &ts, &der2, &len2, &resumed,
	    &reused, &err), -1);
	assert_true(reused);
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_non_null(strstr(err.what, "fingerprint mismatch"));
	assert_null(der2);
	tls_stored_free(&st);
	assert_null(st);
	SSL_CTX_free(ctx);
}

/* Chain and name: a session made for 127.0.0.1, offered for a name the
 * certificate does not carry, is refused (resumed or not). */
static void
test_tls_resume_host(void **state)
{
	SSL_CTX *ctx = server_ctx(pki.cert);
	struct tls_settings ts = settings("127.0.0.1", true, pki.cert_file);
	struct tls_stored *st;
	struct pf_error err;
	unsigned char *der, *der2;
	size_t len, len2;
	bool resumed, reused;
	char why[128];

	(void)state;
	ts.keep_session = true;
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_non_null(der);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	ts.session = st;
	assert_int_equal(resume_attempt(ctx, &ts, &der2, &len2, &resumed,
	    &reused, &err), 0);
	assert_true(resumed);
	free(der2);
	tls_stored_free(&st);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	free(der);
	ts.session = st;
	ts.host = "wrong.example";
	assert_int_equal(resume_attempt(ctx, &ts, &der2, &len2, &resumed,
	    &reused, &err), -1);
	fprintf(stderr, "# the server %s the session\n", reused ? "resumed" :
	    "did not resume");
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_non_null(strstr(err.what, "host name mismatch"));
	tls_stored_free(&st);
	SSL_CTX_free(ctx);
}

/* Nothing verified, nothing kept: tls_verify = false without a pin, or
 * keep_session unset. */
static void
test_tls_resume_unverified(void **state)
{
	SSL_CTX *ctx = server_ctx(pki.cert);
	struct tls_settings ts = settings("localhost", false, NULL);
	struct pf_error err;
	unsigned char *der;
	size_t len;
	bool resumed, reused;

	(void)state;
	ts.keep_session = true;
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_null(der);
	ts = settings("localhost", true, pki.cert_file);
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_null(der);
	SSL_CTX_free(ctx);
}

/*
 * Offering a session defers loading tls_ca_file until a certificate must
 * be verified: a server that does not resume (another ticket key) gets the
 * full check, which must pass for a good certificate and fail for an
 * expired one, and a CA file that will not load is still a configuration
 * error.
 */
static void
test_tls_resume_deferred_ca(void **state)
{
	static const char junk[] = "not a certificate\n";
	SSL_CTX *ctx = server_ctx(pki.cert), *other;
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct tls_stored *st;
	struct pf_error err;
	unsigned char *der, *der2;
	size_t len, len2;
	bool resumed, reused;
	char why[128], garbage[PATH_MAX + 16];

	(void)state;
	ts.keep_session = true;
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_non_null(der);

	/* Not resumed: verified with the file loaded late. */
	other = server_ctx(pki.cert);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	ts.session = st;
	assert_int_equal(resume_attempt(other, &ts, &der2, &len2, &resumed,
	    &reused, &err), 0);
	assert_false(resumed);
	assert_false(reused);
	assert_non_null(der2);	/* verified: kept */
	free(der2);
	tls_stored_free(&st);
	SSL_CTX_free(other);

	/* Not resumed, and a certificate the CA file does not vouch for
	 * (a self-signed one, expired too): refused. */
	other = server_ctx(pki.expired);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	ts.session = st;
	assert_int_equal(resume_attempt(other, &ts, &der2, &len2, &resumed,
	    &reused, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_non_null(strstr(err.what, "certificate verify failed"));
	tls_stored_free(&st);
	SSL_CTX_free(other);

	/* Not resumed, and the CA file holds no certificate: 78. */
	test_pathf(garbage, sizeof(garbage), "%s/garbage-late.pem", pki.dir);
	assert_int_equal(test_write_file(garbage, O_CREAT | O_TRUNC, junk,
	    sizeof(junk) - 1), 0);
	other = server_ctx(pki.cert);
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	ts.session = st;
	ts.ca_file = garbage;
	assert_int_equal(resume_attempt(other, &ts, &der2, &len2, &resumed,
	    &reused, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_non_null(strstr(err.what, "cannot load"));
	tls_stored_free(&st);
	SSL_CTX_free(other);

	/* Resumed with that same file: never loaded, nothing to verify. */
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	ts.session = st;
	assert_int_equal(resume_attempt(ctx, &ts, &der2, &len2, &resumed,
	    &reused, &err), 0);
	assert_true(resumed);
	free(der2);
	tls_stored_free(&st);
	unlink(garbage);
	free(der);
	SSL_CTX_free(ctx);
}

/* Garbage, a truncated session and one with a byte more are not parsed. */
static void
test_tls_resume_garbage(void **state)
{
	SSL_CTX *ctx = server_ctx(pki.cert);
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	static const unsigned char junk[] = "not a session at all";
	struct tls_stored *st;
	struct pf_error err;
	unsigned char *der, *longer;
	size_t len;
	bool resumed, reused;
	char why[128];

	(void)state;
	assert_null(tls_stored_parse(junk, sizeof(junk), why, sizeof(why)));
	fprintf(stderr, "# %s\n", why);
	ts.keep_session = true;
	assert_int_equal(resume_attempt(ctx, &ts, &der, &len, &resumed,
	    &reused, &err), 0);
	assert_non_null(der);
	assert_null(tls_stored_parse(der, len - 1, why, sizeof(why)));
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_null(tls_stored_parse(longer, len + 1, why, sizeof(why)));
	assert_non_null(st = tls_stored_parse(der, len, why, sizeof(why)));
	tls_stored_free(&st);
	tls_stored_free(&st);	/* harmless twice */
	free(longer);
	free(der);
	SSL_CTX_free(ctx);
}

/* --- plain TCP --- */

static void
test_plain_roundtrip(void **state)
{
	struct server s;
	struct pf_error err;
	struct tls_info info;
	struct conn *c = NULL;
	char buf[256];
	unsigned port;

	(void)state;
	server_start(&s, NULL, SRV_GREET_ECHO, &port);
	/* "localhost" may give ::1 first; the next address must be tried */
	assert_int_equal(conn_open("localhost", port, 5, &c, &err), 0);
	assert_non_null(c);
	assert_string_equal(conn_peer_addr(c), "127.0.0.1");
	assert_false(conn_is_tls(c));
	assert_int_equal(conn_tls_info(c, &info), -1);
	expect_line(c, "hello\r\n");
	assert_int_equal(conn_write(c, "ping\r\n", 6, &err), 0);
	expect_line(c, "echo ping\r\n");
	/* the server closed: a clean end of stream */
	assert_int_equal(conn_read(c, buf, sizeof(buf), NULL, &err), 0);
	conn_close(&c);
	assert_null(c);
	conn_close(&c);		/* harmless twice */
	server_stop(&s);
}

static void
test_refused(void **state)
{
	struct pf_error err;
	struct conn *c = NULL;
	unsigned port;
	int fd;

	(void)state;
	/* a port that was free a moment ago and has no listener */
	fd = listen_local(&port);
	close(fd);
	assert_int_equal(conn_open("127.0.0.1", port, 5, &c, &err), -1);
	assert_null(c);
	show(&err);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "Connection refused"));
	assert_non_null(strstr(err.what, "127.0.0.1"));
}

static void
test_unresolvable(void **state)
{
	struct pf_error err;
	struct conn *c = NULL;

	(void)state;
	assert_int_equal(conn_open("nonexistent.invalid", 110, 5, &c, &err), -1);
	assert_null(c);
	show(&err);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "nonexistent.invalid"));
}

static void
test_read_timeout(void **state)
{
	struct pf_error err;
	struct conn *c = NULL;
	char buf[16];
	unsigned port;
	double t0;
	int lfd;

	(void)state;
	/* the kernel completes the connection; nobody ever sends */
	lfd = listen_local(&port);
	assert_int_equal(conn_open("127.0.0.1", port, 1, &c, &err), 0);
	t0 = test_now();
	assert_int_equal(conn_read(c, buf, sizeof(buf), NULL, &err), -1);
	expect_timeout_1s(&err, t0);
	conn_close(&c);
	close(lfd);
}

static void
test_fd_write_timeout_and_epipe(void **state)
{
	struct pf_error err;
	struct conn *c;
	size_t big = 16 * 1024 * 1024;
	char *data;
	double t0, t;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = conn_from_fd(sv[0], 1);
	assert_string_equal(conn_peer_addr(c), "unknown");
	/* the peer never reads: the write stalls and times out */
	data = calloc(1, big);
	assert_non_null(data);
	t0 = test_now();
	assert_int_equal(conn_write(c, data, big, &err), -1);
	t = test_now() - t0;
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "timed out"));
	assert_true(t >= 0.9 && t < 2.5);
	/* the peer is gone: EPIPE, not a SIGPIPE that kills the test */
	close(sv[1]);
	assert_int_equal(conn_write(c, "x", 1, &err), -1);
	show(&err);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	free(data);
	conn_close(&c);
}

/* --- waits that span reads (struct io_wait) --- */

/* A peer that sends `chunk` bytes ('x', the last one '\n') every gap_ms
 * until `total` are out or the other end is gone. */
struct trickler {
	int		 fd;
	size_t		 chunk, total;
	unsigned	 gap_ms;
	pthread_t	 thread;
};

static void *
trickler_main(void *arg)
{
	struct trickler *t = arg;
	struct timespec gap = { (time_t)(t->gap_ms / 1000),
	    (long)(t->gap_ms % 1000) * 1000000 };
	char buf[4096];
	size_t sent = 0, n;

	memset(buf, 'x', sizeof(buf));
	while (sent < t->total) {
		nanosleep(&gap, NULL);
		n = t->total - sent < t->chunk ? t->total - sent : t->chunk;
		if (sent + n == t->total)
			buf[n - 1] = '\n';
		if (send(t->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
			break;
		sent += n;
	}
	return NULL;
}

/* A connection with timeout 1 s whose peer trickles as asked. */
static struct conn *
trickle_start(struct trickler *t, size_t chunk, unsigned gap_ms,
    size_t total)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t->fd = sv[1];
	t->chunk = chunk;
	t->gap_ms = gap_ms;
	t->total = total;
	assert_int_equal(pthread_create(&t->thread, NULL, trickler_main, t), 0);
	return conn_from_fd(sv[0], 1);
}

static void
trickle_stop(struct trickler *t, struct conn **c)
{
	conn_close(c);		/* the peer's next send fails: it stops */
	pthread_join(t->thread, NULL);
	close(t->fd);
}

/* Read with wait w until a '\n' came, up to `max` octets, or an error;
 * returns what conn_read returned last, *got_r the octets read. */
static ssize_t
read_until_lf(struct conn *c, struct io_wait *w, size_t max, size_t *got_r,
    struct pf_error *err)
{
	char buf[4096];
	ssize_t n;

	*got_r = 0;
	do {
		n = conn_read(c, buf, sizeof(buf), w, err);
		if (n > 0)
			*got_r += (size_t)n;
	} while (n > 0 && *got_r < max && buf[n - 1] != '\n');
	return n;
}

/*
 * IO_WAIT_LINE: one deadline for the whole wait, however many reads.  A
 * byte every 300 ms comes within each read's timeout of 1 s, but the line
 * is not whole after 1 s: "timed out after 1 s", with bytes read.
 */
static void
test_wait_line_spans_reads(void **state)
{
	struct trickler t;
	struct pf_error err;
	struct io_wait w;
	struct conn *c = trickle_start(&t, 1, 300, 20);
	size_t got;
	double t0;

	(void)state;
	io_wait_begin(&w, IO_WAIT_LINE);
	t0 = test_now();
	assert_int_equal(read_until_lf(c, &w, 100, &got, &err), -1);
	expect_timeout_1s(&err, t0);
	assert_true(w.expired);
	assert_true(got >= 2 && got <= 4);
	trickle_stop(&t, &c);
}

/*
 * IO_WAIT_DATA: 1 KiB/s over the timeout.  256 bytes every 300 ms (853
 * B/s) is a stall after 1 s; 600 every 300 ms (2 KiB/s) goes on for 3 s,
 * three timeouts, the deadline renewed each time the quota is reached.
 */
static void
test_wait_data_rate(void **state)
{
	struct trickler t;
	struct pf_error err;
	struct io_wait w;
	struct conn *c;
	size_t got;
	double t0, el;

	(void)state;
	c = trickle_start(&t, 256, 300, 8192);
	io_wait_begin(&w, IO_WAIT_DATA);
	t0 = test_now();
	assert_int_equal(read_until_lf(c, &w, 8192, &got, &err), -1);
	el = test_now() - t0;
	show(&err);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "stalled: less than 1 KiB/s for 1 s"));
	assert_true(w.expired);
	assert_true(el >= 0.9 && el < 2.5);
	assert_true(got >= 512 && got < 1024);
	trickle_stop(&t, &c);

	c = trickle_start(&t, 600, 300, 6000);
	io_wait_begin(&w, IO_WAIT_DATA);
	t0 = test_now();
	assert_true(read_until_lf(c, &w, 6000, &got, &err) > 0);
	el = test_now() - t0;
	fprintf(stderr, "# 6000 bytes at 2 KiB/s in %.2f s\n", el);
	assert_int_equal(got, 6000);
	assert_false(w.expired);
	assert_true(el > 2.5);
	trickle_stop(&t, &c);
}

/* Bytes already there: no deadline is armed (no clock read). */
static void
test_wait_ready_arms_nothing(void **state)
{
	struct pf_error err;
	struct io_wait w;
	struct conn *c;
	char buf[16];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = conn_from_fd(sv[0], 1);
	assert_int_equal(send(sv[1], "+OK\r\n", 5, 0), 5);
	io_wait_begin(&w, IO_WAIT_LINE);
	assert_int_equal(conn_read(c, buf, sizeof(buf), &w, &err), 5);
	assert_false(w.armed);
	conn_close(&c);
	close(sv[1]);
}

/* --- TLS --- */

static void
test_tls_verified(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct server s;
	struct pf_error err;
	struct tls_info info;
	struct conn *c;
	char buf[256], fp[128], cli[PATH_MAX + 128];
	FILE *p;

	(void)state;
	c = tls_connect(&s, pki.cert, SRV_GREET_ECHO, &ts);
	assert_true(conn_is_tls(c));
	assert_int_equal(conn_tls_info(c, &info), 0);
	assert_string_equal(info.version, "TLSv1.3");
	assert_true(strlen(info.cipher) > 0);
	expected_fingerprint(fp, sizeof(fp));
	assert_string_equal(info.fingerprint, fp);

	/* the same text that `openssl x509 -fingerprint -sha256` prints */
	test_pathf(cli, sizeof(cli),
	    "openssl x509 -noout -fingerprint -sha256 -in %s 2>/dev/null",
	    pki.cert_file);
	if ((p = popen(cli, "r")) != NULL) {
		if (fgets(cli, sizeof(cli), p) != NULL && strchr(cli, '=')) {
			cli[strcspn(cli, "\n")] = '\0';
			assert_string_equal(info.fingerprint + 7,
			    strchr(cli, '=') + 1);
		}
		pclose(p);
	}

	expect_line(c, "hello\r\n");
	assert_int_equal(conn_write(c, "over tls\r\n", 10, &err), 0);
	expect_line(c, "echo over tls\r\n");
	/* close_notify: end of stream */
	assert_int_equal(conn_read(c, buf, sizeof(buf), NULL, &err), 0);
	conn_close(&c);
	server_stop(&s);
}

static void
test_tls_abrupt_close_is_eof(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct server s;
	struct pf_error err;
	struct conn *c;
	char buf[256];

	(void)state;
	c = tls_connect(&s, pki.cert, SRV_GREET_ABRUPT, &ts);
	expect_line(c, "hello\r\n");
	/* no close_notify: still 0; POP3 knows if something was missing */
	assert_int_equal(conn_read(c, buf, sizeof(buf), NULL, &err), 0);
	conn_close(&c);
	server_stop(&s);
}

static void
test_tls_write_to_closed_peer(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct server s;
	struct pf_error err;
	struct conn *c;
	char block[1024];
	int i, rc = 0;

	(void)state;
	memset(block, 'x', sizeof(block));
	c = tls_connect(&s, pki.cert, SRV_HANDSHAKE_CLOSE, &ts);
	server_stop(&s);
	/* SIGPIPE is not ignored here: a plain write(2) would kill us */
	for (i = 0; i < 100 && rc == 0; i++) {
		rc = conn_write(c, block, sizeof(block), &err);
		usleep(10 * 1000);
	}
	assert_int_equal(rc, -1);
	show(&err);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	conn_close(&c);
}

static void
test_tls_ip_literal(void **state)
{
	struct tls_settings ts = settings("127.0.0.1", true, pki.cert_file);
	struct pf_error err;

	(void)state;
	/* IP SAN matches; no SNI is sent for an address */
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);
	ts.host = "127.0.0.2";
	assert_non_null(strstr(tls_refused(pki.cert, &ts),
	    "host name mismatch"));
}

static void
test_tls_untrusted(void **state)
{
	struct tls_settings ts = settings("localhost", true, NULL);
	const char *what;

	(void)state;
	/* the system store does not know our self-signed certificate */
	what = tls_refused(pki.cert, &ts);
	assert_true(strstr(what, "self-signed") != NULL ||
	    strstr(what, "self signed") != NULL ||
	    strstr(what, "unable to get local issuer") != NULL);
	assert_non_null(strstr(what, "certificate verify failed"));
}

static void
test_tls_no_verify(void **state)
{
	struct tls_settings ts = settings("example.org", false, NULL);
	struct pf_error err;

	(void)state;
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);
}

static void
test_tls_host_mismatch(void **state)
{
	struct tls_settings ts = settings("example.org", true, pki.cert_file);
	const char *what;

	(void)state;
	what = tls_refused(pki.cert, &ts);
	assert_non_null(strstr(what, "host name mismatch"));
	assert_non_null(strstr(what, "certificate is for localhost, 127.0.0.1"));
	assert_non_null(strstr(what, "example.org"));
}

static void
test_tls_fingerprint_match(void **state)
{
	struct tls_settings ts = settings("example.org", true, NULL);
	struct pf_error err;

	(void)state;
	/* the pin replaces CA and name checks: self-signed, wrong name, OK */
	ts.has_fingerprint = true;
	memcpy(ts.fingerprint, pki.fp, 32);
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);
}

static void
test_tls_fingerprint_mismatch(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	const char *what;
	char fp[128];

	(void)state;
	/* refused even though the chain and the name would verify */
	ts.has_fingerprint = true;
	memcpy(ts.fingerprint, pki.fp, 32);
	ts.fingerprint[31] ^= 0x01;
	what = tls_refused(pki.cert, &ts);
	assert_non_null(strstr(what, "fingerprint mismatch"));
	expected_fingerprint(fp, sizeof(fp));
	assert_non_null(strstr(what, fp));
}

static void
test_tls_expired(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.expired_file);

	(void)state;
	assert_non_null(strstr(tls_refused(pki.expired, &ts),
	    "certificate has expired"));
}

/* conn_starttls with ts.ca_file refused before anything is sent: a
 * configuration error that names the file. */
static void
expect_ca_file_refused(const struct tls_settings *ts)
{
	struct pf_error err;
	struct conn *c;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = conn_from_fd(sv[0], 1);
	assert_int_equal(conn_starttls(c, ts, &err), -1);
	show(&err);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_non_null(strstr(err.what, ts->ca_file));
	conn_close(&c);
	close(sv[1]);
}

static void
test_tls_bad_ca_file(void **state)
{
	static const char junk[] = "not a certificate\n";
	struct tls_settings ts = settings("localhost", true,
	    "/nonexistent/popfetch-ca.pem");
	char garbage[PATH_MAX + 16];

	(void)state;
	expect_ca_file_refused(&ts);

	/* a file that holds no certificate */
	test_pathf(garbage, sizeof(garbage), "%s/garbage.pem", pki.dir);
	assert_int_equal(test_write_file(garbage, O_CREAT | O_TRUNC, junk,
	    sizeof(junk) - 1), 0);
	ts.ca_file = garbage;
	expect_ca_file_refused(&ts);
	unlink(garbage);
}

/* Copy file from into to (replacing it in place, same inode). */
static void
copy_into(const char *from, const char *to)
{
	char buf[16384];
	FILE *f;
	size_t n;

	assert_non_null(f = fopen(from, "r"));
	n = fread(buf, 1, sizeof(buf), f);
	assert_true(n > 0 && n < sizeof(buf));
	fclose(f);
	assert_int_equal(test_write_file(to, O_CREAT | O_TRUNC, buf, n), 0);
}

/*
 * The certificate store of a CA file is loaded once per process and kept
 * for the next connection (fetcher/tls.c), but only while it is the same
 * file: one changed in place since is loaded again, and one that no longer
 * loads is refused as usual.
 */
static void
test_tls_ca_file_changed(void **state)
{
	static const char junk[] = "not a certificate\n";
	char path[PATH_MAX + 16];
	struct tls_settings ts;
	struct pf_error err;

	(void)state;
	test_pathf(path, sizeof(path), "%s/changing.pem", pki.dir);
	ts = settings("localhost", true, path);
	copy_into(pki.cert_file, path);
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);	/* kept */
	assert_int_equal(test_write_file(path, O_CREAT | O_TRUNC, junk,
	    sizeof(junk) - 1), 0);
	expect_ca_file_refused(&ts);
	copy_into(pki.cert_file, path);
	assert_int_equal(tls_attempt(pki.cert, &ts, &err), 0);
	unlink(path);
}

static void
test_tls_not_a_tls_server(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct pf_error err;

	(void)state;
	/* a plain server answers the ClientHello with "hello\r\n" */
	assert_int_equal(tls_attempt(NULL, &ts, &err), -1);
	assert_true(err.category == PF_FAIL_TLS ||
	    err.category == PF_FAIL_TEMP);
}

static void
test_tls_handshake_stall(void **state)
{
	struct tls_settings ts = settings("localhost", true, pki.cert_file);
	struct pf_error err;
	struct conn *c = NULL;
	unsigned port;
	double t0;
	int lfd;

	(void)state;
	/* connected by the kernel, but no server ever answers the hello */
	lfd = listen_local(&port);
	assert_int_equal(conn_open("127.0.0.1", port, 1, &c, &err), 0);
	t0 = test_now();
	assert_int_equal(conn_starttls(c, &ts, &err), -1);
	expect_timeout_1s(&err, t0);
	assert_false(conn_is_tls(c));
	conn_close(&c);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_roundtrip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_unresolvable),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_fd_write_timeout_and_epipe),
		cmocka_unit_test(test_wait_line_spans_reads),
		cmocka_unit_test(test_wait_data_rate),
		cmocka_unit_test(test_wait_ready_arms_nothing),
		cmocka_unit_test(test_tls_verified),
		cmocka_unit_test(test_tls_abrupt_close_is_eof),
		cmocka_unit_test(test_tls_write_to_closed_peer),
		cmocka_unit_test(test_tls_ip_literal),
		cmocka_unit_test(test_tls_untrusted),
		cmocka_unit_test(test_tls_no_verify),
		cmocka_unit_test(test_tls_host_mismatch),
		cmocka_unit_test(test_tls_fingerprint_match),
		cmocka_unit_test(test_tls_fingerprint_mismatch),
		cmocka_unit_test(test_tls_expired),
		cmocka_unit_test(test_tls_bad_ca_file),
		cmocka_unit_test(test_tls_ca_file_changed),
		cmocka_unit_test(test_tls_not_a_tls_server),
		cmocka_unit_test(test_tls_handshake_stall),
		cmocka_unit_test(test_tls_resume_pin),
		cmocka_unit_test(test_tls_resume_host),
		cmocka_unit_test(test_tls_resume_unverified),
		cmocka_unit_test(test_tls_resume_deferred_ca),
		cmocka_unit_test(test_tls_resume_garbage),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
