/*
 * sasl.h - client side of the SASL mechanisms popfetch speaks, and the APOP
 * digest.  No I/O: pop3.c carries the messages (RFC 5034), this module makes
 * and checks them.
 *
 *   PLAIN          RFC 4616: base64(authzid NUL authcid NUL password), no
 *                  authzid.
 *   SCRAM-SHA-256  RFC 7677 / RFC 5802, without channel binding ("n,,"),
 *                  with the server signature verified.  SASLprep (RFC 4013)
 *                  is not applied: the password is used as the octets the
 *                  user configured, which equals SASLprep for ASCII and for
 *                  UTF-8 already in NFKC without mapped characters (what
 *                  Dovecot and Cyrus store in practice).
 *   XOAUTH2        Google's and Microsoft's form: base64("user=" USER ^A
 *                  "auth=Bearer " TOKEN ^A ^A); a non-empty challenge after
 *                  it is an error report (base64 JSON) to be answered with
 *                  an empty response.
 *   APOP           RFC 1939 §7: MD5(timestamp secret) in lower-case hex.
 *
 * Everything that holds a secret (password, salted password, keys, the
 * PLAIN and XOAUTH2 blobs) is wiped before it is freed; strings this module
 * hands out that may hold a secret must be released with secret_free().
 */
#ifndef POPFETCH_SASL_H
#define POPFETCH_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "conf_auth.h"
#include "error.h"

struct sasl;

/*
 * A SASL mechanism, described once: a row of the table in sasl.c.  pop3.c
 * chooses its login from that table (USER/PASS and APOP, not SASL, are its
 * own); config/ knows the mechanism only as its `auth` word.
 *
 * The steps, for sasl.c (every mechanism here is client-first):
 *   start  prepare a new exchange (SCRAM: the nonce), or NULL; -1 on error.
 *   first  the client's first message, base64, as a new string released
 *          with secret_free(); moves sa's state on.
 *   step   answer one server challenge after the first message: `dec` is
 *          the decoded challenge (untrusted, may hold NUL), *response_r a
 *          new base64 string.  0 answered, -1 error (err set), 1 not a
 *          challenge the mechanism expects now (sasl_step() reports it).
 *          NULL: no challenge is ever expected.
 */
struct sasl_mech {
	const char	*name;		/* on the wire: CAPA SASL, AUTH */
	enum conf_auth	 conf;		/* the `auth` value that asks for it */
	bool		 reveals_secret;	/* without TLS an eavesdropper
					 * learns the password or token */
	bool		 in_auto;	/* `auth = auto` may choose it; rows are
					 * in auto's order of preference */
	int		(*start)(struct sasl *sa, struct pf_error *err);
	char		*(*first)(struct sasl *sa, struct pf_error *err);
	int		(*step)(struct sasl *sa, const unsigned char *dec,
			    size_t len, char **response_r,
			    struct pf_error *err);
};

/* Row i of the table (auto's order of preference), NULL past the end. */
const struct sasl_mech *sasl_mech_at(size_t i);

/* The row whose name is `name` (any case), or NULL. */
const struct sasl_mech *sasl_mech_find(const char *name);

/* The row answering to the `auth` value, or NULL (auto, user, apop). */
const struct sasl_mech *sasl_mech_for_conf(enum conf_auth auth);

/*
 * A client exchange for `mech`.  `user` and `secret` are copied (the copy of
 * the secret is wiped by sasl_free()).  SCRAM picks a fresh random client
 * nonce (24 base64 characters from 18 random octets) unless a test nonce is
 * set.  Returns NULL with PF_FAIL_INTERNAL if no randomness is available.
 */
struct sasl *sasl_new(const struct sasl_mech *mech, const char *user,
	    const char *secret, struct pf_error *err);

/* Wipe and free the exchange, set *sp to NULL. */
void	sasl_free(struct sasl **sp);

/*
 * The client's first message, base64-encoded (every mechanism here is
 * client-first).  It is sent either as the AUTH initial response or in
 * answer to the server's first, empty, challenge.  Returns a new string
 * (caller releases it with secret_free()); calling it twice is an internal
 * error (NULL with PF_FAIL_INTERNAL).
 */
char	*sasl_initial_response(struct sasl *sa, struct pf_error *err);

/*
 * Answer one server challenge: `challenge` is the base64 text after "+ "
 * (untrusted data!), `len` its length (0 for an empty challenge).  An empty
 * challenge before the initial response was given asks for it.  On success
 * *response_r is a new base64 string, possibly "" (caller releases it with
 * secret_free()).
 * Errors: PF_FAIL_PROTO (challenge not base64, SCRAM message malformed, an
 * unexpected extra challenge), PF_FAIL_AUTH (SCRAM: nonce not extending
 * ours, iteration count outside SCRAM_MIN/MAX_ITERATIONS, unsupported
 * mandatory extension, "e=" server error, "server signature mismatch").
 * XOAUTH2's error challenge is not an error here: the answer is "" and the
 * server's -ERR that follows is the failure.
 */
int	sasl_step(struct sasl *sa, const char *challenge, size_t len,
	    char **response_r, struct pf_error *err);

/*
 * True when the exchange reached its end from the client's view: PLAIN and
 * XOAUTH2 once the credentials were sent (and no error challenge came),
 * SCRAM once the server signature was verified.  pop3.c checks it at +OK:
 * a SCRAM server that says +OK without proving itself is refused.
 */
bool	sasl_is_complete(const struct sasl *sa);

/*
 * SCRAM pieces, raw (not base64), for tests and for sasl_step():
 * client-first-message ("n,,n=USER,r=NONCE", ',' and '=' in USER escaped as
 * "=2C" and "=3D"), client-final-message from server-first-message, and the
 * check of server-final-message.  Errors as for sasl_step().  Returned
 * strings are new (release with secret_free()).
 */
char	*sasl_scram_client_first(struct sasl *sa, struct pf_error *err);
char	*sasl_scram_client_final(struct sasl *sa, const char *server_first,
	    size_t len, struct pf_error *err);
int	sasl_scram_server_final(struct sasl *sa, const char *server_final,
	    size_t len, struct pf_error *err);

/*
 * Tests only: use `nonce` (copied; printable ASCII without ',') as the SCRAM
 * client nonce of every later sasl_new(), or random nonces again after NULL.
 */
void	sasl_set_test_nonce(const char *nonce);

/* base64("\0" user "\0" password) (RFC 4616 §2).  Release with secret_free. */
char	*sasl_plain_blob(const char *user, const char *password);

/* base64("user=" user "\1auth=Bearer " token "\1\1").  Release with
 * secret_free. */
char	*sasl_xoauth2_blob(const char *user, const char *token);

/* RFC 7628: base64("n,a=" saslname(user) ",\1host=" host "\1port=" port
 * "\1auth=Bearer " token "\1\1"), host= left out when host is NULL,
 * port= when port is 0.  Release with secret_free. */
char	*sasl_oauthbearer_blob(const char *user, const char *host,
	    unsigned port, const char *token);

/* The server OAUTHBEARER names (host=, port=); before the first step. */
void	sasl_set_peer(struct sasl *sa, const char *host, unsigned port);

/*
 * APOP digest (RFC 1939 §7): MD5 of timestamp (with its angle brackets)
 * followed by the secret, as 32 lower-case hex digits and NUL in out[33].
 * The concatenation is wiped.
 */
void	sasl_apop_digest(const char *timestamp, const char *secret,
	    char out[33]);

#endif
