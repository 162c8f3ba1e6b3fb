/*
 * pop3_uid.c - a listed message's unique-id, kept in the listing entry's
 * own 8 octets when it fits (pop3.h, union pop3_uid): the listing lives
 * all run, and at 20,000 messages the strings were a third of it
 * (doc/DESIGN.md §5.4).  Apart from pop3.c so that the code that reads
 * listings (fetcher/account.c and its tests) need not link the protocol.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pop3.h"
#include "strpool.h"
#include "xmalloc.h"

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

/* The value of hex digit c of the given case, or -1. */
static int
hex_digit(char c, bool upper)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (upper && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (!upper && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* s[0..16) packed if every digit is hex of the given case. */
static bool
hex_pack(const char *s, bool upper, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 16; i++) {
		int d = hex_digit(s[i], upper);

		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*v_r = v;
	return true;
}

void
pop3_msg_set_uidl(struct pop3_msg *m, const char *s, size_t n,
    struct strpool *pool)
{
	uint64_t v;

	/* One form for each string: pop3_msg_uidl gives it back whole. */
	if (n <= sizeof(m->uid.chars)) {
		memset(m->uid.chars, 0, sizeof(m->uid.chars));
		memcpy(m->uid.chars, s, n);
		m->uid_form = POP3_UID_SHORT;
	} else if (n == 16 && hex_pack(s, true, &v)) {
		m->uid.packed = v;
		m->uid_form = POP3_UID_HEX_UPPER;
	} else if (n == 16 && hex_pack(s, false, &v)) {
		m->uid.packed = v;
		m->uid_form = POP3_UID_HEX_LOWER;
	} else {
		m->uid.str = pool != NULL ? strpool_ndup(pool, s, n) :
		    xstrndup(s, n);
		m->uid_form = POP3_UID_POINTER;
	}
}

const char *
pop3_msg_uidl(const struct pop3_msg *m, char buf[POP3_UIDL_BUF])
{
	const char *digits = hex_upper;
	uint64_t v;
	int i;

	switch (m->uid_form) {
	case POP3_UID_SHORT:
		memcpy(buf, m->uid.chars, sizeof(m->uid.chars));
		buf[sizeof(m->uid.chars)] = '\0';
		return buf;
	case POP3_UID_HEX_LOWER:
		digits = hex_lower;
		/* FALLTHROUGH */
	case POP3_UID_HEX_UPPER:
		v = m->uid.packed;
		for (i = 15; i >= 0; i--, v >>= 4)
			buf[i] = digits[v & 0xf];
		buf[16] = '\0';
		return buf;
	default:
		return m->uid.str;
	}
}

int
pop3_msg_uidl_cmp(const struct pop3_msg *a, const struct pop3_msg *b)
{
	char ba[POP3_UIDL_BUF], bb[POP3_UIDL_BUF];

	/* The same hex form: the packed order is the digits' order. */
	if (a->uid_form == b->uid_form && (a->uid_form == POP3_UID_HEX_UPPER ||
	    a->uid_form == POP3_UID_HEX_LOWER))
		return (a->uid.packed > b->uid.packed) -
		    (a->uid.packed < b->uid.packed);
	return strcmp(pop3_msg_uidl(a, ba), pop3_msg_uidl(b, bb));
}
