/*
 * fuzz_escape.c - pf_escape_ext() (lib/escape.h), the escaping of server
 * text for the terminal and the logs.
 *
 * Input: byte S (output size: 0 gives PF_ESCAPE_SIZE(n), room for all;
 * otherwise S - 1, from 0 to 254), byte F (bit 0: PF_ESCAPE_KEEP_BACKSLASH),
 * then the n bytes to escape.  The output buffer is a heap block of exactly
 * the output size, so ASan sees any write past it.
 *
 * Checked against models written independently of lib/escape.c:
 *   - the output is valid UTF-8 (a decoder by code point ranges, not by
 *     lead-byte tables) and holds no C0, DEL or C1 character, nor any of the
 *     line-reordering characters escape.h lists;
 *   - the return value is strlen(out), below the output size; the output is
 *     NUL-terminated; *used_r <= n;
 *   - without the flag, unescaping the output ("\\" -> '\', "\xNN" ->
 *     byte) gives back exactly the first *used_r input bytes (round trip);
 *     with PF_ESCAPE_KEEP_BACKSLASH the output is the flagless one with
 *     each "\\" undoubled;
 *   - with room for all (S = 0), all the input is used; a valid printable
 *     input (no control, no invalid byte, no backslash) comes out unchanged;
 *   - a cut output is a prefix of the whole one, cut between escapes or
 *     characters, and the next piece would not have fitted;
 *   - a second pass with PF_ESCAPE_KEEP_BACKSLASH changes nothing (the log
 *     layer runs such a pass over text that may be escaped already).
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The code point of the valid UTF-8 character at p[0..n), and its length
 * in *len_r; -1 if p does not start one.  Decodes first, then rejects by
 * range: overlong, surrogate, past U+10FFFF.
 */
static long
decode(const unsigned char *p, size_t n, size_t *len_r)
{
	static const long min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len, i;
	long cp;

	if (p[0] < 0x80) {
		*len_r = 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return -1;
	}
	if (len > n)
		return -1;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	*len_r = len;
	return cp;
}

/* What escape.h promises never to show raw. */
static bool
hidden(long cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c ||
	    cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

/* Valid UTF-8 with nothing hidden() in it. */
static bool
shows_raw(const unsigned char *p, size_t n)
{
	size_t i = 0, len;
	long cp;

	while (i < n) {
		cp = decode(p + i, n - i, &len);
		if (cp < 0 || hidden(cp))
			return false;
		i += len;
	}
	return true;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Undo the escapes of pf_escape() (no flag) in out[0..n) into buf (room for
 * n bytes); returns the length.  A backslash starts "\\" or "\xNN", always.
 */
static size_t
unescape(const char *out, size_t n, unsigned char *buf)
{
	size_t i = 0, o = 0;
	int hi, lo;

	while (i < n) {
		if (out[i] != '\\') {
			buf[o++] = (unsigned char)out[i++];
		} else if (i + 1 < n && out[i + 1] == '\\') {
			buf[o++] = '\\';
			i += 2;
		} else {
			FZ_CHECK(i + 3 < n && out[i + 1] == 'x');
			hi = hexval((unsigned char)out[i + 2]);
			lo = hexval((unsigned char)out[i + 3]);
			FZ_CHECK(hi >= 0 && lo >= 0);
			buf[o++] = (unsigned char)(hi << 4 | lo);
			i += 4;
		}
	}
	return o;
}

/* Output bytes of the first piece of in[0..n) (n > 0): a character, or
 * one byte that does not start a valid one. */
static size_t
next_piece(const unsigned char *in, size_t n, bool keep)
{
	size_t len;
	long cp = decode(in, n, &len);

	if (cp < 0)
		return 4;
	if (hidden(cp))
		return 4 * len;
	if (cp == '\\' && !keep)
		return 2;
	return len;
}

/*
 * What the flag changes: the escape without it, with each "\\\\" read
 * back as one backslash and each "\\xNN" left alone, is the escape with
 * it.
 */
static void
check_keep_is_undoubled(const char *in, size_t n, const char *kept,
    size_t klen)
{
	char *full = malloc(PF_ESCAPE_SIZE(n)), *u;
	size_t flen, i = 0, o = 0;

	FZ_CHECK(full != NULL);
	flen = pf_escape(in, n, full, PF_ESCAPE_SIZE(n));
	u = malloc(flen + 1);
	FZ_CHECK(u != NULL);
	while (i < flen) {
		if (full[i] == '\\' && full[i + 1] == '\\') {
			u[o++] = '\\';
			i += 2;
		} else if (full[i] == '\\') {
			FZ_CHECK(i + 3 < flen && full[i + 1] == 'x');
			memcpy(u + o, full + i, 4);
			o += 4;
			i += 4;
		} else {
			u[o++] = full[i++];
		}
	}
	FZ_CHECK(o == klen && memcmp(u, kept, klen) == 0);
	free(u);
	free(full);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	char *out, *whole, *again;
	unsigned char *back;
	size_t n, outsz, wsz, len, wlen, used, wused, alen, blen;
	unsigned flags;
	bool keep;

	if (size < 2)
		return 0;
	n = size - 2;
	in = (const char *)data + 2;
	flags = data[1] & 1 ? PF_ESCAPE_KEEP_BACKSLASH : 0;
	keep = flags != 0;
	wsz = PF_ESCAPE_SIZE(n);
	outsz = data[0] == 0 ? wsz : (size_t)data[0] - 1;

	/* The whole escape, with room for all (PF_ESCAPE_SIZE is enough). */
	whole = malloc(wsz);
	FZ_CHECK(whole != NULL);
	wlen = pf_escape_ext(in, n, whole, wsz, flags, &wused);
	FZ_CHECK(wused == n);
	FZ_CHECK(wlen < wsz && whole[wlen] == '\0' && strlen(whole) == wlen);
	FZ_CHECK(shows_raw((const unsigned char *)whole, wlen));
	back = malloc(wlen + 1);
	FZ_CHECK(back != NULL);
	if (keep) {
		check_keep_is_undoubled(in, n, whole, wlen);
	} else {
		/* Round trip: exactly the input, byte for byte. */
		blen = unescape(whole, wlen, back);
		FZ_CHECK(blen == n && memcmp(back, in, n) == 0);
		/* pf_escape() is pf_escape_ext() without flags. */
		again = malloc(wsz);
		FZ_CHECK(again != NULL);
		FZ_CHECK(pf_escape(in, n, again, wsz) == wlen);
		FZ_CHECK(memcmp(again, whole, wlen + 1) == 0);
		free(again);
	}
	/* A printable valid input without backslashes comes out as it is. */
	if (shows_raw((const unsigned char *)in, n) && memchr(in, '\\', n) == NULL)
		FZ_CHECK(wlen == n && memcmp(whole, in, n) == 0);

	/* A second pass keeping backslashes changes nothing. */
	again = malloc(PF_ESCAPE_SIZE(wlen));
	FZ_CHECK(again != NULL);
	alen = pf_escape_ext(whole, wlen, again, PF_ESCAPE_SIZE(wlen),
	    PF_ESCAPE_KEEP_BACKSLASH, &used);
	FZ_CHECK(used == wlen && alen == wlen && memcmp(again, whole, wlen) == 0);
	free(again);

	/* Into exactly outsz bytes (0: nothing may be written at all). */
	out = outsz > 0 ? malloc(outsz) : NULL;
	FZ_CHECK(outsz == 0 || out != NULL);
	len = pf_escape_ext(in, n, out, outsz, flags, &used);
	FZ_CHECK(used <= n);
	if (outsz == 0) {
		FZ_CHECK(len == 0 && used == 0);
	} else {
		FZ_CHECK(len < outsz && out[len] == '\0' && strlen(out) == len);
		/* A prefix of the whole escape ... */
		FZ_CHECK(len <= wlen && memcmp(out, whole, len) == 0);
		FZ_CHECK(shows_raw((const unsigned char *)out, len));
		if (!keep) {
			/* ... that is the escape of the input it used ... */
			blen = unescape(out, len, back);
			FZ_CHECK(blen == used && memcmp(back, in, used) == 0);
		}
		if (used < n) {
			/* ... and stops only where the next piece, whole,
			 * would not fit. */
			FZ_CHECK(len + next_piece((const unsigned char *)in +
			    used, n - used, keep) > outsz - 1);
		} else {
			FZ_CHECK(len == wlen);
		}
	}
	free(out);
	free(back);
	free(whole);
	return 0;
}
