/*
 * dryrun.c - `popfetch fetch --dry-run`.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "account.h"
#include "dryrun.h"
#include "escape.h"
#include "log.h"
#include "params.h"
#include "report.h"
#include "xmalloc.h"

/* The run of one dry run. */
struct dry {
	struct session		*s;
	const char		*name;
	bool			 top_refused;	/* no CAPA, TOP said -ERR */
};

struct header_buf {
	char	 buf[DRYRUN_HEADER_MAX];
	size_t	 len;
};

static int
hdr_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	(void)m;
	(void)err;
	((struct header_buf *)ctx)->len = 0;
	return 0;
}

static int
hdr_data(void *ctx, const char *buf, size_t len, struct pf_error *err)
{
	struct header_buf *h = ctx;
	size_t room = sizeof(h->buf) - 1 - h->len;

	(void)err;
	if (len > room)
		len = room;
	memcpy(h->buf + h->len, buf, len);
	h->len += len;
	return 0;
}

static int
hdr_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	(void)ctx;
	(void)m;
	(void)octets;
	(void)err;
	return 0;
}

/*
 * Copy header field `field` (e.g. "Subject") of the header in h, unfolded,
 * control characters replaced, into out; "" when absent.  Untrusted data.
 */
static void
header_field(const struct header_buf *h, const char *field, char *out,
    size_t outsz)
{
	size_t flen = strlen(field), i = 0, o = 0;
	const char *p = h->buf, *end = h->buf + h->len;

	out[0] = '\0';
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			eol = end;
		if (eol == p)	/* empty line: end of the header */
			return;
		if ((size_t)(eol - p) > flen && p[flen] == ':' &&
		    strncasecmp(p, field, flen) == 0) {
			const char *v = p + flen + 1;

			for (;;) {
				for (i = 0; v + i < eol && o + 1 < outsz; i++) {
					unsigned char c = (unsigned char)v[i];

					if (c == '\r')
						continue;
					out[o++] = (c < 0x20 || c == 0x7f) ?
					    ' ' : (char)c;
				}
				/* folded continuation lines */
				if (eol < end && eol + 1 < end &&
				    (eol[1] == ' ' || eol[1] == '\t')) {
					v = eol + 1;
					eol = memchr(v, '\n', (size_t)(end - v));
					if (eol == NULL)
						eol = end;
					continue;
				}
				break;
			}
			out[o] = '\0';
			/* trim leading blanks */
			for (i = 0; out[i] == ' ' || out[i] == '\t'; i++)
				;
			memmove(out, out + i, o - i + 1);
			return;
		}
		p = eol + 1;
	}
}

/*
 * Print what would happen to message m, with its From, Subject and Date
 * read with TOP m 0 when with_headers and the server has TOP: as CAPA
 * says, or, from a server without CAPA, as long as TOP answers +OK.  A
 * -ERR to TOP leaves the preview out; a failed session (a lost
 * connection) fails the dry run with the code a fetch would have.
 */
static int
dry_show(struct dry *r, const char *what, const struct pop3_msg *m,
    const char *note, bool with_headers, struct pf_error *err)
{
	const struct pop3_capa *capa = pop3_capabilities(r->s->pop3);
	struct header_buf *h;
	struct pop3_sink sink = { hdr_begin, hdr_data, hdr_end, NULL, NULL };
	char from[256], subject[256], date[128], ub[POP3_UIDL_BUF];

	if (with_headers && !r->top_refused && (capa->top || !capa->known)) {
		h = xcalloc(1, sizeof(*h));
		sink.ctx = h;
		if (pop3_top(r->s->pop3, m, 0, &sink, err) == 0) {
			char *ef, *es, *ed;

			header_field(h, "From", from, sizeof(from));
			header_field(h, "Subject", subject, sizeof(subject));
			header_field(h, "Date", date, sizeof(date));
			/* The server's bytes, never raw on a terminal. */
			ef = pf_escape_dup(from, (size_t)-1);
			es = pf_escape_dup(subject, (size_t)-1);
			ed = pf_escape_dup(date, (size_t)-1);
			printf("%s: would %s message %u, UIDL %s, %" PRIu64
			    " bytes%s\n    From: %s\n    Subject: %s\n"
			    "    Date: %s\n", r->name, what, m->number,
			    pop3_msg_uidl_or(m, ub, "-"), (uint64_t)m->size, note,
			    ef, es, ed);
			free(ef);
			free(es);
			free(ed);
			free(h);
			return 0;
		}
		free(h);
		if (!pop3_is_synchronised(r->s->pop3))
			return -1;
		/* -ERR: no preview for it; without CAPA, no TOP at all. */
		log_debug("%s: %s", r->name, err->what);
		if (!capa->known)
			r->top_refused = true;
	}
	printf("%s: would %s message %u, UIDL %s, %" PRIu64 " bytes%s\n",
	    r->name, what, m->number, pop3_msg_uidl_or(m, ub, "-"),
	    (uint64_t)m->size, note);
	return 0;
}

int
dry_run(struct session *s, struct seen *seen, struct pop3_listing *l,
    double t0, struct pf_error *err)
{
	const struct conf_account *a = s->acct;
	struct dry dry = { .s = s, .name = a->name };
	time_t now = time(NULL);
	size_t i, n;
	unsigned long would_delete = 0, skipped = 0;
	uint64_t bytes = 0;
	int rc = -1;

	if (!l->has_uidl && !a->delete)
		return pf_error_set(err, PF_FAIL_PROTO, "the server does not "
		    "support UIDL, so popfetch cannot tell new messages from "
		    "old; set delete = true to fetch and delete every message");
	n = account_select(a, l, false, &skipped);
	for (i = 0; i < l->count; i++) {
		const struct pop3_msg *m = &l->msgs[i];

		if (!m->fetch)
			continue;
		if (dry_show(&dry, a->delete ? "fetch and delete" : "fetch",
		    m, "", true, err) == -1)
			goto done;
		bytes += m->size;	/* as LIST announces it */
	}
	for (i = 0; i < l->count; i++) {
		const struct pop3_msg *m = &l->msgs[i];
		bool known;

		if (m->fetch) {
			if (a->delete)
				would_delete++;
			continue;
		}
		known = pop3_msg_has_uidl(m) && m->known;
		if (known) {
			if (account_want_delete(a, seen, m, now)) {
				/* popfetch(1): From, Subject and Date for every
				 * message listed, deleted ones too. */
				if (dry_show(&dry, "delete", m,
				    " (fetched before)", true, err) == -1)
					goto done;
				would_delete++;
			}
			continue;
		}
		if (dry_show(&dry, "skip", m, a->max_size > 0 &&
		    m->size > a->max_size ? " (over max_size)" :
		    " (over max_messages)", true, err) == -1)
			goto done;
	}
	fflush(stdout);
	report_summary(a->name, n, skipped, would_delete, -1, bytes,
	    report_clock() - t0, true);
	rc = 0;
done:
	fflush(stdout);
	return rc;
}
