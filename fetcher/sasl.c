/*
 * sasl.c - SASL client mechanisms (PLAIN, SCRAM-SHA-256, XOAUTH2,
 * OAUTHBEARER) and the APOP digest.  See sasl.h.
 *
 * RFC 4616 (PLAIN), RFC 5802 (SCRAM) with RFC 7677 (SCRAM-SHA-256),
 * RFC 7628 (OAUTHBEARER),
 * RFC 1939 §7 (APOP), and the XOAUTH2 format documented by Google ("OAuth 2.0
 * Mechanism", developers.google.com/gmail/imap/xoauth2-protocol) and
 * Microsoft ("Authenticate an IMAP, POP or SMTP connection using OAuth").
 *
 * Each exchange is a small state machine: the client speaks first, then
 * every server challenge moves it one step.  All server input is untrusted:
 * it is decoded, checked for NUL and length, and parsed once here.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "crypto.h"
#include "log.h"
#include "params.h"
#include "sasl.h"
#include "xmalloc.h"

/* 18 random octets give 24 base64 characters, no padding (RFC 5802 §5.1:
 * the nonce is printable ASCII without ','; base64's alphabet qualifies). */
#define SCRAM_NONCE_OCTETS	18
#define SCRAM_NONCE_MAX		128

enum sasl_state {
	SASL_ST_START = 0,	/* nothing sent yet */
	SASL_ST_SENT,		/* PLAIN/XOAUTH2 credentials, SCRAM client-first */
	SASL_ST_FINAL_SENT,	/* SCRAM client-final sent */
	SASL_ST_DONE,		/* SCRAM verified the server; others complete */
	SASL_ST_ERROR_SEEN,	/* XOAUTH2/OAUTHBEARER error challenge answered */
};

struct sasl {
	const struct sasl_mech *mech;
	enum sasl_state	 state;
	char		*user;
	char		*secret;
	char		*host;		/* OAUTHBEARER host=, NULL: none */
	unsigned	 port;		/* OAUTHBEARER port=, 0: none */
	char		 nonce[SCRAM_NONCE_MAX + 1];
	char		*client_first_bare;
	unsigned char	 server_signature[CRYPTO_SHA256_LEN];
};

static char	*test_nonce;

static int	scram_step(struct sasl *, const unsigned char *, size_t, char **,
		    struct pf_error *);

void
sasl_set_test_nonce(const char *nonce)
{
	free(test_nonce);
	test_nonce = nonce == NULL ? NULL : xstrdup(nonce);
}

struct sasl *
sasl_new(const struct sasl_mech *mech, const char *user, const char *secret,
    struct pf_error *err)
{
	struct sasl *sa;

	sa = xcalloc(1, sizeof(*sa));
	sa->mech = mech;
	sa->user = xstrdup(user);
	sa->secret = xstrdup(secret);
	if (mech->start != NULL && mech->start(sa, err) == -1)
		sasl_free(&sa);
	return sa;
}

void
sasl_set_peer(struct sasl *sa, const char *host, unsigned port)
{
	free(sa->host);
	sa->host = host != NULL ? xstrdup(host) : NULL;
	sa->port = port;
}

void
sasl_free(struct sasl **sp)
{
	struct sasl *sa = *sp;

	if (sa == NULL)
		return;
	free(sa->user);
	free(sa->host);
	secret_free(&sa->secret);
	free(sa->client_first_bare);
	crypto_cleanse(sa, sizeof(*sa));
	free(sa);
	*sp = NULL;
}

/* Encode len octets of data and wipe the data (it held a secret). */
static char *
encode_and_wipe(unsigned char *data, size_t len)
{
	char *b64 = crypto_base64_encode(data, len);

	crypto_cleanse(data, len);
	if (b64 == NULL)
		fatalx("base64 encoding failed");
	return b64;
}

char *
sasl_plain_blob(const char *user, const char *password)
{
	size_t ulen = strlen(user), plen = strlen(password);
	size_t len = 1 + ulen + 1 + plen;
	unsigned char *buf = xmalloc(len);
	char *b64;

	/* RFC 4616 §2: [authzid] NUL authcid NUL passwd; no authzid. */
	buf[0] = '\0';
	memcpy(buf + 1, user, ulen);
	buf[1 + ulen] = '\0';
	memcpy(buf + 2 + ulen, password, plen);
	b64 = encode_and_wipe(buf, len);
	free(buf);
	return b64;
}

char *
sasl_xoauth2_blob(const char *user, const char *token)
{
	char *raw = xasprintf("user=%s\001auth=Bearer %s\001\001", user, token);
	size_t len = strlen(raw);
	char *b64;

	b64 = encode_and_wipe((unsigned char *)raw, len);
	free(raw);
	return b64;
}

/* RFC 5802 §5.1 saslname, also RFC 7628's gs2 authzid. */
static char	*scram_escape_user(const char *user);

char *
sasl_oauthbearer_blob(const char *user, const char *host, unsigned port,
    const char *token)
{
	char *name = scram_escape_user(user), *hostkv, *portkv, *raw, *b64;

	/* RFC 7628 §3.1: gs2-header "n,a=USER," then kvpairs, each ended
	 * by ^A, and a final ^A. */
	hostkv = host != NULL ? xasprintf("host=%s\001", host) : xstrdup("");
	portkv = port != 0 ? xasprintf("port=%u\001", port) : xstrdup("");
	raw = xasprintf("n,a=%s,\001%s%sauth=Bearer %s\001\001", name, hostkv,
	    portkv, token);
	free(name);
	free(hostkv);
	free(portkv);
	b64 = encode_and_wipe((unsigned char *)raw, strlen(raw));
	free(raw);
	return b64;
}

void
sasl_apop_digest(const char *timestamp, const char *secret, char out[33])
{
	char *cat = xasprintf("%s%s", timestamp, secret);

	crypto_md5_hex(cat, strlen(cat), out);
	crypto_cleanse(cat, strlen(cat));
	free(cat);
}

/* RFC 5802 §5.1 saslname: ',' -> "=2C", '=' -> "=3D". */
static char *
scram_escape_user(const char *user)
{
	size_t len = strlen(user), i, o = 0;
	char *out = xmalloc(3 * len + 1);

	for (i = 0; i < len; i++) {
		if (user[i] == ',') {
			memcpy(out + o, "=2C", 3);
			o += 3;
		} else if (user[i] == '=') {
			memcpy(out + o, "=3D", 3);
			o += 3;
		} else
			out[o++] = user[i];
	}
	out[o] = '\0';
	return out;
}

char *
sasl_scram_client_first(struct sasl *sa, struct pf_error *err)
{
	char *name;

	if (sa->mech->step != scram_step || sa->state != SASL_ST_START) {
		pf_error_set(err, PF_FAIL_INTERNAL,
		    "SCRAM client-first out of sequence");
		return NULL;
	}
	name = scram_escape_user(sa->user);
	sa->client_first_bare = xasprintf("n=%s,r=%s", name, sa->nonce);
	free(name);
	sa->state = SASL_ST_SENT;
	/* gs2-header "n,,": no channel binding, no authzid (RFC 5802 §7). */
	return xasprintf("n,,%s", sa->client_first_bare);
}

/*
 * Split off the attribute "X=value" that starts at *p (untrusted data!);
 * value ends at ',' or the end.  Returns the value's length, or -1 if the
 * attribute is not `name`.
 */
static ssize_t
scram_attr(const char **p, const char *end, char name, const char **val_r)
{
	const char *comma;

	if (end - *p < 2 || (*p)[0] != name || (*p)[1] != '=')
		return -1;
	*val_r = *p + 2;
	comma = memchr(*val_r, ',', (size_t)(end - *val_r));
	if (comma == NULL)
		comma = end;
	*p = comma;
	return comma - *val_r;
}

static void
xor_into(unsigned char *a, const unsigned char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		a[i] ^= b[i];
}

char *
sasl_scram_client_final(struct sasl *sa, const char *msg, size_t len,
    struct pf_error *err)
{
	unsigned char salted[CRYPTO_SHA256_LEN], client_key[CRYPTO_SHA256_LEN];
	unsigned char stored_key[CRYPTO_SHA256_LEN];
	unsigned char server_key[CRYPTO_SHA256_LEN];
	unsigned char proof[CRYPTO_SHA256_LEN];
	const char *p = msg, *end = msg + len, *nonce, *salt_b64, *iter;
	unsigned char *salt = NULL;
	char *without_proof = NULL, *auth_msg = NULL, *proof_b64 = NULL;
	char *final = NULL;
	ssize_t nlen, slen, ilen, i;
	size_t saltlen = 0, cnlen;
	unsigned long iterations = 0;

	if (sa->mech->step != scram_step || sa->state != SASL_ST_SENT) {
		pf_error_set(err, PF_FAIL_INTERNAL,
		    "SCRAM client-final out of sequence");
		return NULL;
	}
	/* Server input: no NUL inside (RFC 5802 §7: printable values). */
	if (memchr(msg, '\0', len) != NULL) {
		pf_error_set(err, PF_FAIL_PROTO,
		    "SCRAM server-first-message holds a NUL");
		goto fail;
	}
	/* RFC 5802 §5.1 "m": a mandatory extension we cannot know. */
	if (len >= 2 && msg[0] == 'm' && msg[1] == '=') {
		pf_error_set(err, PF_FAIL_AUTH,
		    "SCRAM server requires an unsupported extension");
		goto fail;
	}
	if ((nlen = scram_attr(&p, end, 'r', &nonce)) < 0 ||
	    p == end || *p++ != ',' ||
	    (slen = scram_attr(&p, end, 's', &salt_b64)) < 0 ||
	    p == end || *p++ != ',' ||
	    (ilen = scram_attr(&p, end, 'i', &iter)) < 0) {
		pf_error_set(err, PF_FAIL_PROTO,
		    "malformed SCRAM server-first-message");
		pf_error_set_server(err, msg, len);
		goto fail;
	}
	/* Anything after i= must be an extension (",x=..."): ignored. */

	/* The server's nonce must extend ours (RFC 5802 §5.1 "r"). */
	cnlen = strlen(sa->nonce);
	if ((size_t)nlen <= cnlen || memcmp(nonce, sa->nonce, cnlen) != 0) {
		pf_error_set(err, PF_FAIL_AUTH,
		    "SCRAM server nonce does not extend the client nonce");
		goto fail;
	}
	for (i = 0; i < nlen; i++)
		if (nonce[i] < 0x21 || nonce[i] > 0x7e) {
			pf_error_set(err, PF_FAIL_PROTO,
			    "SCRAM server nonce holds a non-printable byte");
			goto fail;
		}
	if (slen == 0 ||
	    crypto_base64_decode(salt_b64, (size_t)slen, &salt, &saltlen) == -1 ||
	    saltlen == 0) {
		pf_error_set(err, PF_FAIL_PROTO, "bad SCRAM salt");
		pf_error_set_server(err, msg, len);
		goto fail;
	}
	if (ilen == 0) {
		pf_error_set(err, PF_FAIL_PROTO, "bad SCRAM iteration count");
		pf_error_set_server(err, msg, len);
		goto fail;
	}
	for (i = 0; i < ilen; i++) {
		if (iter[i] < '0' || iter[i] > '9') {
			pf_error_set(err, PF_FAIL_PROTO,
			    "bad SCRAM iteration count");
			pf_error_set_server(err, msg, len);
			goto fail;
		}
		/* Saturate: anything past the cap is refused below. */
		if (iterations <= SCRAM_MAX_ITERATIONS)
			iterations = iterations * 10 +
			    (unsigned long)(iter[i] - '0');
	}
	/* RFC 7677 §4: at least 4096; the cap keeps a hostile server from
	 * making us spin. */
	if (iterations < SCRAM_MIN_ITERATIONS ||
	    iterations > SCRAM_MAX_ITERATIONS) {
		pf_error_set(err, PF_FAIL_AUTH,
		    "SCRAM iteration count %lu outside %u..%u", iterations,
		    (unsigned)SCRAM_MIN_ITERATIONS,
		    (unsigned)SCRAM_MAX_ITERATIONS);
		goto fail;
	}

	/* RFC 5802 §3. */
	if (crypto_pbkdf2_sha256(sa->secret, strlen(sa->secret), salt, saltlen,
	    (unsigned)iterations, salted) == -1) {
		pf_error_set(err, PF_FAIL_INTERNAL, "PBKDF2 failed");
		goto fail;
	}
	crypto_hmac_sha256(salted, sizeof(salted), "Client Key", 10,
	    client_key);
	crypto_sha256(client_key, sizeof(client_key), stored_key);
	crypto_hmac_sha256(salted, sizeof(salted), "Server Key", 10,
	    server_key);
	/* "biws" is base64("n,,"), the gs2-header we sent. */
	without_proof = xasprintf("c=biws,r=%.*s", (int)nlen, nonce);
	auth_msg = xasprintf("%s,%.*s,%s", sa->client_first_bare, (int)len,
	    msg, without_proof);
	crypto_hmac_sha256(stored_key, sizeof(stored_key), auth_msg,
	    strlen(auth_msg), proof);
	xor_into(proof, client_key, sizeof(proof));
	crypto_hmac_sha256(server_key, sizeof(server_key), auth_msg,
	    strlen(auth_msg), sa->server_signature);
	proof_b64 = crypto_base64_encode(proof, sizeof(proof));
	if (proof_b64 == NULL)
		fatalx("base64 encoding failed");
	final = xasprintf("%s,p=%s", without_proof, proof_b64);
	sa->state = SASL_ST_FINAL_SENT;
fail:
	crypto_cleanse(salted, sizeof(salted));
	crypto_cleanse(client_key, sizeof(client_key));
	crypto_cleanse(stored_key, sizeof(stored_key));
	crypto_cleanse(server_key, sizeof(server_key));
	crypto_cleanse(proof, sizeof(proof));
	free(salt);
	free(without_proof);
	secret_free(&auth_msg);
	secret_free(&proof_b64);
	return final;
}

/* Compare without an early exit (the server signature is a MAC). */
static int
ct_equal(const unsigned char *a, const unsigned char *b, size_t len)
{
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

int
sasl_scram_server_final(struct sasl *sa, const char *msg, size_t len,
    struct pf_error *err)
{
	const char *p = msg, *end = msg + len, *val;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	ssize_t vlen;
	int ok;

	if (sa->mech->step != scram_step ||
	    sa->state != SASL_ST_FINAL_SENT)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "SCRAM server-final out of sequence");
	if (memchr(msg, '\0', len) != NULL)
		return pf_error_set(err, PF_FAIL_PROTO,
		    "SCRAM server-final-message holds a NUL");
	if ((vlen = scram_attr(&p, end, 'e', &val)) >= 0) {
		/* RFC 5802 §7 server-error: the server refused us. */
		pf_error_set(err, PF_FAIL_AUTH, "SCRAM server error");
		pf_error_set_server(err, val, (size_t)vlen);
		return -1;
	}
	if ((vlen = scram_attr(&p, end, 'v', &val)) < 0 ||
	    crypto_base64_decode(val, (size_t)vlen, &sig, &siglen) == -1) {
		pf_error_set(err, PF_FAIL_PROTO,
		    "malformed SCRAM server-final-message");
		pf_error_set_server(err, msg, len);
		return -1;
	}
	ok = siglen == sizeof(sa->server_signature) &&
	    ct_equal(sig, sa->server_signature, siglen);
	free(sig);
	if (!ok)
		return pf_error_set(err, PF_FAIL_AUTH,
		    "server signature mismatch");
	sa->state = SASL_ST_DONE;
	return 0;
}

/* ---- the mechanisms' steps (struct sasl_mech in sasl.h) ---- */

static char *
plain_first(struct sasl *sa, struct pf_error *err)
{
	(void)err;
	sa->state = SASL_ST_DONE;
	return sasl_plain_blob(sa->user, sa->secret);
}

static char *
xoauth2_first(struct sasl *sa, struct pf_error *err)
{
	(void)err;
	sa->state = SASL_ST_DONE;
	return sasl_xoauth2_blob(sa->user, sa->secret);
}

/*
 * XOAUTH2 and OAUTHBEARER: a challenge after the credentials is an error
 * report in JSON (Google: {"status":"401", ...}; RFC 7628 §3.2.2:
 * {"status":"invalid_token", ...}), answered so that the server fails the
 * AUTH with -ERR: XOAUTH2 wants an empty line, OAUTHBEARER a lone ^A
 * (kvsep).  Anything after that is unexpected.
 */
static int
oauth_error_step(struct sasl *sa, const unsigned char *dec, size_t len,
    char **response_r, struct pf_error *err)
{
	(void)dec;
	(void)len;
	(void)err;
	if (sa->state != SASL_ST_DONE)
		return 1;
	sa->state = SASL_ST_ERROR_SEEN;
	*response_r = sa->mech->conf == CONF_AUTH_OAUTHBEARER ?
	    encode_and_wipe((unsigned char[]){ 0x01 }, 1) : xstrdup("");
	return 0;
}

static char *
oauthbearer_first(struct sasl *sa, struct pf_error *err)
{
	(void)err;
	sa->state = SASL_ST_DONE;
	return sasl_oauthbearer_blob(sa->user, sa->host, sa->port, sa->secret);
}

static int
scram_start(struct sasl *sa, struct pf_error *err)
{
	unsigned char raw[SCRAM_NONCE_OCTETS];
	char *b64;

	if (test_nonce != NULL) {
		if (strlen(test_nonce) > SCRAM_NONCE_MAX)
			return -1;
		memcpy(sa->nonce, test_nonce, strlen(test_nonce) + 1);
		return 0;
	}
	if (crypto_random(raw, sizeof(raw)) == -1)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "no random bytes for the SCRAM nonce");
	b64 = crypto_base64_encode(raw, sizeof(raw));
	if (b64 == NULL || strlen(b64) > SCRAM_NONCE_MAX) {
		free(b64);
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "SCRAM nonce encoding");
	}
	memcpy(sa->nonce, b64, strlen(b64) + 1);
	free(b64);
	return 0;
}

static char *
scram_first(struct sasl *sa, struct pf_error *err)
{
	char *raw, *b64;

	if ((raw = sasl_scram_client_first(sa, err)) == NULL)
		return NULL;
	b64 = crypto_base64_encode(raw, strlen(raw));
	free(raw);
	if (b64 == NULL)
		fatalx("base64 encoding failed");
	return b64;
}

static int
scram_step(struct sasl *sa, const unsigned char *dec, size_t len,
    char **response_r, struct pf_error *err)
{
	char *raw;

	if (sa->state == SASL_ST_SENT) {
		raw = sasl_scram_client_final(sa, (const char *)dec, len, err);
		if (raw == NULL)
			return -1;
		*response_r = crypto_base64_encode(raw, strlen(raw));
		secret_free(&raw);
		if (*response_r == NULL)
			fatalx("base64 encoding failed");
		return 0;
	}
	if (sa->state == SASL_ST_FINAL_SENT) {
		/* RFC 5034 §4: server-final comes as a challenge, answered
		 * with an empty line, then +OK. */
		if (sasl_scram_server_final(sa, (const char *)dec, len,
		    err) == -1)
			return -1;
		*response_r = xstrdup("");
		return 0;
	}
	return 1;
}

/*
 * Every mechanism popfetch speaks, once.  The order is `auth = auto`'s
 * preference among the rows with in_auto (popfetch.conf(5)): SCRAM never
 * reveals the password, PLAIN does and is chosen only where that is
 * allowed; XOAUTH2 needs a token, so only `auth = xoauth2` asks for it.
 */
static const struct sasl_mech mechs[] = {
	{
		.name = "SCRAM-SHA-256",
		.conf = CONF_AUTH_SCRAM_SHA_256,
		.reveals_secret = false,
		.in_auto = true,
		.start = scram_start,
		.first = scram_first,
		.step = scram_step,
	},
	{
		.name = "PLAIN",
		.conf = CONF_AUTH_PLAIN,
		.reveals_secret = true,
		.in_auto = true,
		.first = plain_first,
	},
	{
		.name = "XOAUTH2",
		.conf = CONF_AUTH_XOAUTH2,
		.reveals_secret = true,
		.in_auto = false,
		.first = xoauth2_first,
		.step = oauth_error_step,
	},
	{
		.name = "OAUTHBEARER",
		.conf = CONF_AUTH_OAUTHBEARER,
		.reveals_secret = true,
		.in_auto = false,
		.first = oauthbearer_first,
		.step = oauth_error_step,
	},
};

const struct sasl_mech *
sasl_mech_at(size_t i)
{
	return i < sizeof(mechs) / sizeof(mechs[0]) ? &mechs[i] : NULL;
}

const struct sasl_mech *
sasl_mech_find(const char *name)
{
	const struct sasl_mech *m;
	size_t i;

	for (i = 0; (m = sasl_mech_at(i)) != NULL; i++)
		if (strcasecmp(m->name, name) == 0)
			return m;
	return NULL;
}

const struct sasl_mech *
sasl_mech_for_conf(enum conf_auth auth)
{
	const struct sasl_mech *m;
	size_t i;

	for (i = 0; (m = sasl_mech_at(i)) != NULL; i++)
		if (m->conf == auth)
			return m;
	return NULL;
}

/* ---- the exchange ---- */

char *
sasl_initial_response(struct sasl *sa, struct pf_error *err)
{
	if (sa->state != SASL_ST_START) {
		pf_error_set(err, PF_FAIL_INTERNAL,
		    "SASL initial response out of sequence");
		return NULL;
	}
	return sa->mech->first(sa, err);
}

int
sasl_step(struct sasl *sa, const char *challenge, size_t len,
    char **response_r, struct pf_error *err)
{
	unsigned char *dec = NULL;
	size_t declen = 0;
	int rc = 1;

	*response_r = NULL;
	/* RFC 5034 §4: an empty challenge first asks for the initial response. */
	if (sa->state == SASL_ST_START) {
		if (len != 0) {
			pf_error_set(err, PF_FAIL_PROTO,
			    "unexpected %s challenge before the initial "
			    "response", sa->mech->name);
			pf_error_set_server(err, challenge, len);
			return -1;
		}
		*response_r = sasl_initial_response(sa, err);
		return *response_r == NULL ? -1 : 0;
	}
	if (crypto_base64_decode(challenge, len, &dec, &declen) == -1) {
		pf_error_set(err, PF_FAIL_PROTO, "SASL challenge is not base64");
		pf_error_set_server(err, challenge, len);
		return -1;
	}
	if (sa->mech->step != NULL)
		rc = sa->mech->step(sa, dec, declen, response_r, err);
	free(dec);
	if (rc != 1)
		return rc;
	pf_error_set(err, PF_FAIL_PROTO, "unexpected %s challenge",
	    sa->mech->name);
	pf_error_set_server(err, challenge, len);
	return -1;
}

bool
sasl_is_complete(const struct sasl *sa)
{
	return sa->state == SASL_ST_DONE;
}
