/* escape.c - untrusted bytes made safe to show (escape.h says what and why). */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "escape.h"
#include "xmalloc.h"

/*
 * The length of the valid UTF-8 sequence at p[0..n) (RFC 3629, Table 3
 * of Unicode's chapter 3: no overlong form, no surrogate, nothing past
 * U+10FFFF), or 0 if the bytes there are not one.  *cp_r: its code point.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, unsigned long *cp_r)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	unsigned long cp;
	size_t len, i;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;		/* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f;		/* surrogates U+D800-U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;		/* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f;		/* past U+10FFFF */
	} else {
		return 0;	/* continuation byte, 0xC0, 0xC1, 0xF5-0xFF */
	}
	if (n < len)
		return 0;			/* cut short */
	for (i = 1; i < len; i++) {
		unsigned char b = p[i];

		if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
			return 0;
		cp = cp << 6 | (b & 0x3f);
	}
	*cp_r = cp;
	return len;
}

/* A valid character that is still not shown as it is (escape.h). */
static bool
unprintable(unsigned long cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    cp == 0x061c ||			/* ARABIC LETTER MARK */
	    cp == 0x200e || cp == 0x200f ||	/* LRM, RLM */
	    (cp >= 0x2028 && cp <= 0x202e) ||	/* LS, PS, bidi embed/override */
	    (cp >= 0x2066 && cp <= 0x2069);	/* bidi isolates */
}

size_t
pf_escape_ext(const char *in, size_t inlen, char *out, size_t outsz,
    unsigned flags, size_t *used_r)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, len, k;
	unsigned long cp;

	if (in == NULL)
		inlen = 0;
	else if (inlen == (size_t)-1)
		inlen = strlen(in);
	if (outsz == 0) {
		if (used_r != NULL)
			*used_r = 0;
		return 0;
	}
	while (i < inlen) {
		len = utf8_seq(p + i, inlen - i, &cp);
		if (len == 0 || unprintable(cp)) {
			/* Every byte of it as \xNN (one byte if invalid). */
			if (len == 0)
				len = 1;
			if (len * 4 > outsz - 1 - o)
				break;
			for (k = 0; k < len; k++) {
				out[o++] = '\\';
				out[o++] = 'x';
				out[o++] = hex[p[i + k] >> 4];
				out[o++] = hex[p[i + k] & 0x0f];
			}
		} else if (cp == '\\' && !(flags & PF_ESCAPE_KEEP_BACKSLASH)) {
			if (2 > outsz - 1 - o)
				break;
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			if (len > outsz - 1 - o)
				break;
			memcpy(out + o, p + i, len);
			o += len;
		}
		i += len;
	}
	out[o] = '\0';
	if (used_r != NULL)
		*used_r = i;
	return o;
}

size_t
pf_escape(const char *in, size_t inlen, char *out, size_t outsz)
{
	return pf_escape_ext(in, inlen, out, outsz, 0, NULL);
}

char *
pf_escape_dup(const char *in, size_t inlen)
{
	size_t size;
	char *out;

	if (in == NULL)
		inlen = 0;
	else if (inlen == (size_t)-1)
		inlen = strlen(in);
	if (inlen > ((size_t)-1 - 1) / 4)
		inlen = ((size_t)-1 - 1) / 4;	/* cannot be allocated anyway */
	size = PF_ESCAPE_SIZE(inlen);
	out = xmalloc(size);
	pf_escape_ext(in, inlen, out, size, 0, NULL);
	return out;
}
