/*
 * fuzz_capa.c - the greeting with its APOP timestamp (pop3_greeting) and
 * CAPA parsing (pop3_capa), over a fake transport.
 *
 * Input: byte F (bit 0: a second CAPA, as after STLS; bit 1: STLS after
 * the CAPAs), then the chunk schedule of fuzz_util.h, then the server's
 * side as segments separated by two NUL octets: the greeting (readable at
 * once), the CAPA reply, [the second CAPA reply], [the STLS reply].
 *
 * Checks (against a small model of the stream where it says more than an
 * invariant): the commands sent; a timestamp is "<...@...>" of printable
 * octets, at most POP3_APOP_TIMESTAMP_MAX long, taken from the greeting;
 * after CAPA, the capability lines are exactly the body lines of the reply
 * (dot-unstuffed), at most POP3_CAPA_LINES_MAX of them, the flags and SASL
 * mechanisms are what those lines say, and pop3_has_sasl() agrees; STLS
 * refuses without I/O when CAPA lacks it and forgets the capabilities on
 * success; errors have a category these commands may give.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "fuzz_util.h"
#include "log.h"
#include "params.h"
#include "pop3.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(getenv("FUZZ_TRACE") != NULL ? 2 : -1, false);
	return 0;
}

static bool
is_word(const char *line, const char *w)
{
	size_t n = strcspn(line, " ");

	return n == strlen(w) && strncasecmp(line, w, n) == 0;
}

/*
 * The model of a reply in the stream s[0..len) that starts at *pos (its
 * status line): the body lines of a +OK reply as the model reads them:
 * split at LF, one CR dropped, "." ends, one leading dot removed.  The
 * client reads one byte stream, so each reply starts where the previous
 * one ended, whatever the segments.  Returns the number of lines and
 * advances *pos past the reply; *ok_r: the "." was found.
 */
static size_t
model_lines(const uint8_t *s, size_t len, size_t *pos_r, char ***lines_r,
    bool *ok_r)
{
	const uint8_t *nl;
	size_t pos = *pos_r, n = 0, ll;
	char **lines = NULL;
	const uint8_t *p;
	bool err;

	*ok_r = false;
	*lines_r = NULL;
	err = len - pos >= 4 && memcmp(s + pos, "-ERR", 4) == 0;
	nl = pos < len ? memchr(s + pos, '\n', len - pos) : NULL;
	pos = nl != NULL ? (size_t)(nl - s) + 1 : len;
	if (err) {
		*pos_r = pos;
		return 0;
	}
	while (pos < len && (nl = memchr(s + pos, '\n', len - pos)) != NULL) {
		p = s + pos;
		ll = (size_t)(nl - p);
		pos += ll + 1;
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 1 && p[0] == '.') {
			*ok_r = true;
			break;
		}
		if (ll > 0 && p[0] == '.') {
			p++;
			ll--;
		}
		lines = realloc(lines, (n + 1) * sizeof(*lines));
		FZ_CHECK(lines != NULL);
		lines[n] = malloc(ll + 1);
		FZ_CHECK(lines[n] != NULL);
		memcpy(lines[n], p, ll);
		lines[n][ll] = '\0';
		n++;
	}
	*lines_r = lines;
	*pos_r = pos;
	return n;
}

/* Check a successful CAPA whose reply starts at *pos of the stream. */
static void
check_capa(struct pop3 *s, const struct pop3_capa *c, const uint8_t *stream,
    size_t len, size_t *pos)
{
	struct pop3_capa want;
	char **mlines;
	size_t nm, i, k;
	const char *p;
	bool ok;

	FZ_CHECK(c == pop3_capabilities(s));
	nm = model_lines(stream, len, pos, &mlines, &ok);
	if (!c->known) {
		FZ_CHECK(nm == 0 && mlines == NULL);
		FZ_CHECK(c->nlines == 0 && c->nsasl == 0);
		FZ_CHECK(!c->top && !c->uidl && !c->user && !c->pipelining &&
		    !c->stls && !c->resp_codes && !c->auth_resp_code);
		return;
	}
	FZ_CHECK(c->nlines <= POP3_CAPA_LINES_MAX);
	FZ_CHECK(ok);
	FZ_CHECK(nm == c->nlines);
	memset(&want, 0, sizeof(want));
	k = 0;
	for (i = 0; i < c->nlines; i++) {
		const char *line = c->lines[i];

		FZ_CHECK(strcmp(line, mlines[i]) == 0);
		for (p = line; *p != '\0'; p++)
			FZ_CHECK(*p == '\t' || ((unsigned char)*p >= 0x20 &&
			    (unsigned char)*p != 0x7f));
		want.top |= is_word(line, "TOP");
		want.uidl |= is_word(line, "UIDL");
		want.user |= is_word(line, "USER");
		want.pipelining |= is_word(line, "PIPELINING");
		want.stls |= is_word(line, "STLS");
		want.resp_codes |= is_word(line, "RESP-CODES");
		want.auth_resp_code |= is_word(line, "AUTH-RESP-CODE");
		if (!is_word(line, "SASL"))
			continue;
		/* The words after SASL, in order. */
		p = line + 4;
		for (;;) {
			size_t n;

			p += strspn(p, " ");
			if ((n = strcspn(p, " ")) == 0)
				break;
			/* Past POP3_SASL_MECHS_MAX words are ignored. */
			if (k == POP3_SASL_MECHS_MAX)
				break;
			FZ_CHECK(k < c->nsasl);
			FZ_CHECK(strlen(c->sasl[k]) == n &&
			    memcmp(c->sasl[k], p, n) == 0);
			FZ_CHECK(pop3_has_sasl(s, c->sasl[k]));
			k++;
			p += n;
		}
	}
	FZ_CHECK(k == c->nsasl);
	FZ_CHECK(want.top == c->top && want.uidl == c->uidl &&
	    want.user == c->user && want.pipelining == c->pipelining &&
	    want.stls == c->stls && want.resp_codes == c->resp_codes &&
	    want.auth_resp_code == c->auth_resp_code);
	for (i = 0; i < nm; i++)
		free(mlines[i]);
	free(mlines);
}

static bool
ok_category(const struct pf_error *err)
{
	return err->category == PF_FAIL_PROTO ||
	    err->category == PF_FAIL_TEMP || err->category == PF_FAIL_AUTH;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *d = data, *seg[4];
	size_t len = size, seglen[4], rel[FZ_MAX_RELEASE], nrel = 0, slen = 0;
	size_t nseg, i, n, txbefore, mpos;
	const uint8_t *nl;
	struct fz_sched sched;
	struct fz_server sv;
	struct pf_error err;
	const struct pop3_capa *c;
	const char *ts;
	struct pop3 *s;
	bool twice, stls;
	char want[64];
	uint8_t *stream;

	if (len < 1)
		return 0;
	twice = d[0] & 1;
	stls = d[0] & 2;
	d++;
	len--;
	fz_sched_take(&sched, &d, &len);

	nseg = 2 + twice + stls;
	fz_split(d, len, seg, seglen, nseg);
	stream = malloc(len + 1);
	FZ_CHECK(stream != NULL);
	for (i = 0; i < nseg; i++) {
		if (seglen[i] > 0)
			memcpy(stream + slen, seg[i], seglen[i]);
		slen += seglen[i];
		rel[nrel++] = slen;	/* segment i: after i commands */
	}
	fz_server_init(&sv, stream, slen, rel, nrel, &sched);
	free(stream);
	snprintf(want, sizeof(want), "CAPA\r\n%s%s", twice ? "CAPA\r\n" : "",
	    stls ? "STLS\r\n" : "");

	s = pop3_new("fuzz", fz_read, fz_write, &sv);
	FZ_CHECK(pop3_apop_timestamp(s) == NULL);
	pf_error_clear(&err);
	if (pop3_greeting(s, &err) == -1) {
		fz_check_error(&err);
		FZ_CHECK(ok_category(&err));
		FZ_CHECK(sv.txlen == 0);
		goto out;
	}
	/* The model: the CAPA reply follows the greeting line. */
	nl = memchr(sv.stream, '\n', sv.len);
	FZ_CHECK(nl != NULL);
	mpos = (size_t)(nl - sv.stream) + 1;
	if ((ts = pop3_apop_timestamp(s)) != NULL) {
		n = strlen(ts);
		FZ_CHECK(n >= 3 && n <= POP3_APOP_TIMESTAMP_MAX);
		FZ_CHECK(ts[0] == '<' && ts[n - 1] == '>');
		FZ_CHECK(strchr(ts, '@') != NULL);
		for (i = 1; i + 1 < n; i++)
			FZ_CHECK(ts[i] >= 0x21 && ts[i] <= 0x7e &&
			    ts[i] != '<' && ts[i] != '>');
		/* From the greeting line: the stream's first line. */
		FZ_CHECK(memmem(sv.stream, mpos, ts, n) != NULL);
	}

	for (i = 0; i < 1 + (size_t)twice; i++) {
		pf_error_clear(&err);
		c = NULL;
		if (pop3_capa(s, &c, &err) == -1) {
			fz_check_error(&err);
			FZ_CHECK(ok_category(&err));
			goto out;
		}
		FZ_CHECK(c != NULL);
		check_capa(s, c, sv.stream, sv.len, &mpos);
	}
	if (stls) {
		c = pop3_capabilities(s);
		txbefore = sv.txlen;
		pf_error_clear(&err);
		if (pop3_stls(s, &err) == 0) {
			FZ_CHECK(!c->known || c->stls);
			c = pop3_capabilities(s);
			FZ_CHECK(!c->known && c->nlines == 0 && c->nsasl == 0);
			FZ_CHECK(pop3_is_synchronised(s));
		} else {
			fz_check_error(&err);
			FZ_CHECK(ok_category(&err) ||
			    err.category == PF_FAIL_TLS);
			/* Not offered: refused without sending anything. */
			if (c->known && !c->stls)
				FZ_CHECK(sv.txlen == txbefore &&
				    err.category == PF_FAIL_TLS);
			goto out;
		}
	}
	FZ_CHECK(fz_tx_is(&sv, want));
out:
	FZ_CHECK(fz_tx_prefix_of(&sv, want));
	pop3_free(&s);
	fz_server_free(&sv);
	return 0;
}
