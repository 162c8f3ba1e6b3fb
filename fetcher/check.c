/*
 * check.c - `popfetch check`.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "escape.h"
#include "report.h"
#include "session.h"

/*
 * A certificate that failed verification: what it is, and the line that
 * would trust it (popfetch(1), check).  Its names are the server's words.
 */
static void
show_refused(const struct conf_account *a, const struct tls_cert_info *ci,
    FILE *out)
{
	char *subject = pf_escape_dup(ci->subject, (size_t)-1);
	char *issuer = pf_escape_dup(ci->issuer, (size_t)-1);

	fprintf(out, "  certificate (not trusted): %s\n", ci->fingerprint);
	fprintf(out, "    subject: %s\n", subject);
	fprintf(out, "    issuer: %s\n", issuer);
	fprintf(out, "    valid: %s to %s\n", ci->not_before, ci->not_after);
	fprintf(out, "  if you have checked that this is your server's "
	    "certificate, pin it in account %s:\n", a->name);
	fprintf(out, "    tls_fingerprint = \"%s\"\n", ci->fingerprint);
	free(subject);
	free(issuer);
}

int
check_account(const struct conf *conf, const struct conf_account *acct,
    FILE *out)
{
	struct tls_cert_info refused;
	/* check shows a full handshake, as a new client would see it, and
	 * changes nothing, the TLS session file included (doc/DESIGN.md
	 * §12). */
	struct session s = { .acct = acct, .state_dir = conf->state_dir,
	    .rejected = &refused, .no_resume = true };
	const struct pop3_capa *capa;
	struct pf_error err;
	struct tls_info ti;
	unsigned count = 0;
	uint64_t size = 0;
	char b1[32];
	size_t i;

	pf_error_clear(&err);
	memset(&refused, 0, sizeof(refused));
	fprintf(out, "%s: %s@%s:%u, tls %s\n", acct->name, acct->user,
	    acct->host, acct->port, conf_tls_name(acct->tls));
	if (session_open(&s, true, &err) == -1) {
		if (err.category == PF_FAIL_TLS && refused.valid)
			show_refused(acct, &refused, out);
		goto fail;
	}
	if (conn_tls_info(s.conn, &ti) == 0) {
		fprintf(out, "  TLS: %s, %s\n", ti.version, ti.cipher);
		fprintf(out, "  certificate: %s\n", ti.fingerprint);
	} else
		fprintf(out, "  TLS: none\n");
	capa = pop3_capabilities(s.pop3);
	fprintf(out, "  capabilities:%s\n", capa->known && capa->nlines > 0 ?
	    "" : " (none: the server does not answer CAPA)");
	for (i = 0; i < capa->nlines; i++) {
		char *line = pf_escape_dup(capa->lines[i], (size_t)-1);

		fprintf(out, "    %s\n", line);
		free(line);
	}
	fprintf(out, "  logged in with: %s\n", pop3_auth_mechanism(s.pop3));
	if (pop3_stat(s.pop3, &count, &size, &err) == -1)
		goto fail;
	fprintf(out, "  mailbox: %u messages, %s (%" PRIu64 " bytes)\n", count,
	    report_bytes(size, b1, sizeof(b1)), size);
	fflush(out);
	session_close(&s, true);
	return 0;
fail:
	fflush(out);
	session_close(&s, false);
	return report_error(acct->name, &err);
}
