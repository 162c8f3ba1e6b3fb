/*
 * fuzz_list.c - UIDL and LIST parsing (pop3_list_messages) over a fake
 * transport; the fuzz data is the server's side after the commands.
 *
 * Input: byte F (bit 0: the server advertises PIPELINING, so UIDL and LIST
 * go out together; bit 1: STAT first, so message numbers are capped by its
 * count), then the chunk schedule of fuzz_util.h, then the server's replies
 * as segments separated by two NUL octets:
 *     [STAT reply]  UIDL and LIST replies            (pipelined)
 *     [STAT reply]  UIDL reply  LIST reply           (lock-step)
 * each segment readable once the command(s) it answers have been written.
 *
 * Checks: every read is for a line wait (doc/DESIGN.md §5.4); the
 * commands sent; on success the listing is what the replies
 * say, in message-number order (a small model reads LIST's lines, sorts
 * them by number, and UIDL's unique-ids),
 * and every listed message has a number
 * in 1..max (STAT's count when known), no duplicates, and, when the server
 * had UIDL, a unique-id of 1..POP3_UIDL_MAX octets in 0x21..0x7E, no
 * duplicates, POP3_UIDL_TOTAL_MAX octets in all; without UIDL no
 * unique-ids.  On failure no listing and an
 * error category a listing may fail with (PROTO, TEMP, or AUTH from a
 * response code).
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz_util.h"
#include "log.h"
#include "params.h"
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

/*
 * The transport in conn_read's form (pop3_read_fn), as the session has it
 * in production: every read of a listing (STAT, CAPA, UIDL, LIST) is for
 * a line wait, which this clockless server never arms.
 */
static ssize_t
list_read(void *ctx, void *buf, size_t len, struct io_wait *w,
    struct pf_error *err)
{
	FZ_CHECK(w != NULL);
	FZ_CHECK(w->kind == IO_WAIT_LINE);
	FZ_CHECK(!w->armed && !w->expired);
	return fz_read(ctx, buf, len, w, err);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return (x > y) - (x < y);
}

static void
check_listing(const struct pop3_listing *l, unsigned max)
{
	unsigned *nums;
	char **uids;
	size_t i, j, n, total = 0;

	FZ_CHECK(l->count <= POP3_MESSAGES_MAX);
	FZ_CHECK(l->count == 0 || l->msgs != NULL);
	nums = calloc(l->count + 1, sizeof(*nums));
	uids = calloc(l->count + 1, sizeof(*uids));
	FZ_CHECK(nums != NULL && uids != NULL);
	for (i = 0; i < l->count; i++) {
		const struct pop3_msg *m = &l->msgs[i];
		char ub[POP3_UIDL_BUF];
		const char *u = pop3_msg_uidl(m, ub);

		FZ_CHECK(m->number >= 1 && m->number <= max);
		nums[i] = m->number;
		if (!l->has_uidl) {
			FZ_CHECK(u == NULL && !pop3_msg_has_uidl(m));
			continue;
		}
		FZ_CHECK(u != NULL && pop3_msg_has_uidl(m));
		n = strlen(u);
		FZ_CHECK(n >= 1 && n <= POP3_UIDL_MAX);
		for (j = 0; j < n; j++)
			FZ_CHECK(u[j] >= 0x21 && u[j] <= 0x7e);
		uids[i] = strdup(u);
		FZ_CHECK(uids[i] != NULL);
		total += n;
	}
	FZ_CHECK(total <= POP3_UIDL_TOTAL_MAX);
	qsort(nums, l->count, sizeof(*nums), cmp_unsigned);
	for (i = 1; i < l->count; i++)
		FZ_CHECK(nums[i - 1] != nums[i]);
	if (l->has_uidl && l->count > 1) {
		qsort(uids, l->count, sizeof(*uids), cmp_str);
		for (i = 1; i < l->count; i++)
			FZ_CHECK(strcmp(uids[i - 1], uids[i]) != 0);
	}
	for (i = 0; i < l->count; i++)
		free(uids[i]);
	free(uids);
	free(nums);
}

/*
 * The model of a successful listing: read one reply at *pos of s[0..len)
 * (status line, then, after +OK, body lines up to "." with CR dropped and
 * a stuffed dot removed).  Returns the number of body lines (their starts
 * and lengths in line[] / llen[]), -1 for a -ERR reply, -2 for more
 * than max lines.
 */
static long
model_reply(const uint8_t *s, size_t len, size_t *pos, const uint8_t **line,
    size_t *llen, size_t max)
{
	const uint8_t *p, *nl;
	size_t n = 0, ll;
	bool err;

	nl = memchr(s + *pos, '\n', len - *pos);
	FZ_CHECK(nl != NULL);
	err = len - *pos >= 4 && memcmp(s + *pos, "-ERR", 4) == 0;
	*pos = (size_t)(nl - s) + 1;
	if (err)
		return -1;
	for (;;) {
		p = s + *pos;
		nl = memchr(p, '\n', len - *pos);
		FZ_CHECK(nl != NULL);
		ll = (size_t)(nl - p);
		*pos += ll + 1;
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 1 && p[0] == '.')
			return (long)n;
		if (p[0] == '.') {
			p++;
			ll--;
		}
		if (n == max)
			return -2;	/* more than the model holds */
		line[n] = p;
		llen[n++] = ll;
	}
}

/* Decimal digits at p (validated by the parser already). */
static uint64_t
digits(const uint8_t *p, size_t len, size_t *used)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	*used = i;
	return v;
}

/* A LIST line of the model: its number and where it is. */
struct model_line {
	uint64_t	 num;
	size_t		 idx;
};

static int
cmp_model_line(const void *a, const void *b)
{
	uint64_t x = ((const struct model_line *)a)->num;
	uint64_t y = ((const struct model_line *)b)->num;

	return (x > y) - (x < y);
}

/*
 * On success the listing is what the replies say: LIST's lines (number,
 * size) in number order, and each number's unique-id from the UIDL reply.  The
 * UIDL reply starts at ustart; the LIST reply follows it in the stream
 * (whatever the segments: the client reads one byte stream).
 */
static void
check_model(const struct pop3_listing *l, const uint8_t *s, size_t len,
    size_t ustart)
{
	enum { MAXL = 8192 };
	static const uint8_t *uline[MAXL], *lline[MAXL];
	static size_t ulen[MAXL], llen[MAXL];
	static struct model_line order[MAXL];
	size_t pos = ustart, i, j, k, m, used;
	char ub[POP3_UIDL_BUF];
	const char *u;
	long nu, nl;
	uint64_t num, size;

	nu = model_reply(s, len, &pos, uline, ulen, MAXL);
	if (nu == -2)
		return;
	nl = model_reply(s, len, &pos, lline, llen, MAXL);
	if (nl == -2)
		return;
	FZ_CHECK(nl >= 0 && (size_t)nl == l->count);
	FZ_CHECK(l->has_uidl == (nu >= 0));
	for (i = 0; i < l->count; i++) {
		order[i].num = digits(lline[i], llen[i], &used);
		order[i].idx = i;
	}
	if (l->count > 1)
		qsort(order, l->count, sizeof(*order), cmp_model_line);
	for (i = 0; i < l->count; i++) {
		m = order[i].idx;
		num = order[i].num;
		FZ_CHECK(num == l->msgs[i].number);
		digits(lline[m], llen[m], &used);
		FZ_CHECK(used < llen[m] && lline[m][used] == ' ');
		k = used + 1;
		/* A size past POP3_SIZE_MAX is held as POP3_SIZE_MAX
		 * (lib/params.h). */
		size = digits(lline[m] + k, llen[m] - k, &used);
		FZ_CHECK((size > POP3_SIZE_MAX ? POP3_SIZE_MAX : size) ==
		    l->msgs[i].size);
		if (nu < 0)
			continue;
		for (j = 0; j < (size_t)nu; j++) {
			if (digits(uline[j], ulen[j], &used) != num)
				continue;
			k = used + 1;
			u = pop3_msg_uidl(&l->msgs[i], ub);
			FZ_CHECK(strlen(u) == ulen[j] - k);
			FZ_CHECK(memcmp(u, uline[j] + k, ulen[j] - k) == 0);
			break;
		}
		FZ_CHECK(j < (size_t)nu);
	}
	/* Every UIDL line belongs to a listed message. */
	FZ_CHECK(nu < 0 || (size_t)nu == l->count);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char capa[] = "+OK\r\nPIPELINING\r\n.\r\n";
	const uint8_t *d = data, *seg[3];
	size_t len = size, seglen[3], rel[FZ_MAX_RELEASE], nrel = 0, slen = 0;
	size_t nseg, i, k, ustart = 0;
	struct fz_sched sched;
	struct fz_server sv;
	struct pf_error err;
	struct pop3_listing *l = (struct pop3_listing *)&l;	/* poison */
	struct pop3 *s;
	const struct pop3_capa *c;
	bool pipelined, stat;
	unsigned count = 0, max = POP3_MESSAGES_MAX;
	uint64_t total;
	char want[64];
	uint8_t *stream;
	int rc;

	if (len < 1)
		return 0;
	pipelined = d[0] & 1;
	stat = d[0] & 2;
	d++;
	len--;
	fz_sched_take(&sched, &d, &len);

	/* The stream and when each part becomes readable. */
	nseg = (stat ? 1 : 0) + (pipelined ? 1 : 2);
	fz_split(d, len, seg, seglen, nseg);
	stream = malloc(sizeof(capa) + len);
	FZ_CHECK(stream != NULL);
	rel[nrel++] = 0;			/* no greeting */
	if (pipelined) {
		memcpy(stream, capa, strlen(capa));
		slen = strlen(capa);
		rel[nrel++] = slen;		/* after CAPA */
	}
	for (i = 0; i < nseg; i++) {
		if (i == (stat ? 1u : 0u))
			ustart = slen;		/* the UIDL reply */
		if (seglen[i] > 0)
			memcpy(stream + slen, seg[i], seglen[i]);
		slen += seglen[i];
		/* Pipelined: UIDL and LIST come in one write, and LIST's
		 * line releases the last segment. */
		if (pipelined && i == nseg - 1) {
			rel[nrel] = rel[nrel - 1];
			nrel++;
		}
		rel[nrel++] = slen;
	}
	FZ_CHECK(nrel <= FZ_MAX_RELEASE);
	fz_server_init(&sv, stream, slen, rel, nrel, &sched);
	free(stream);

	s = pop3_new("fuzz", list_read, fz_write, &sv);
	if (pipelined) {
		pf_error_clear(&err);
		FZ_CHECK(pop3_capa(s, &c, &err) == 0);
		FZ_CHECK(c->known && c->pipelining);
	}
	k = (size_t)snprintf(want, sizeof(want), "%s%s%s",
	    pipelined ? "CAPA\r\n" : "", stat ? "STAT\r\n" : "",
	    "UIDL\r\nLIST\r\n");
	FZ_CHECK(k < sizeof(want));
	if (stat) {
		pf_error_clear(&err);
		if (pop3_stat(s, &count, &total, &err) == -1) {
			fz_check_error(&err);
			FZ_CHECK(err.category == PF_FAIL_PROTO ||
			    err.category == PF_FAIL_TEMP ||
			    err.category == PF_FAIL_AUTH);
			goto out;
		}
		FZ_CHECK(count <= POP3_MESSAGES_MAX);
		max = count;
	}
	pf_error_clear(&err);
	rc = pop3_list_messages(s, &l, &err);
	if (rc == 0) {
		FZ_CHECK(l != NULL);
		FZ_CHECK(fz_tx_is(&sv, want));
		FZ_CHECK(pop3_is_synchronised(s));
		check_listing(l, max);
		check_model(l, sv.stream, sv.len, ustart);
		pop3_listing_free(&l);
		FZ_CHECK(l == NULL);
	} else {
		FZ_CHECK(rc == -1);
		FZ_CHECK(l == NULL);
		fz_check_error(&err);
		FZ_CHECK(err.category == PF_FAIL_PROTO ||
		    err.category == PF_FAIL_TEMP ||
		    err.category == PF_FAIL_AUTH);
	}
out:
	FZ_CHECK(fz_tx_prefix_of(&sv, want));
	pop3_free(&s);
	fz_server_free(&sv);
	return 0;
}
