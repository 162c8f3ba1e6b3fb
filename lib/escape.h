/*
 * escape.h - untrusted bytes made safe to show: on a terminal, in a log
 * file, in syslog.
 *
 * A server's words (error replies, CAPA lines, header previews, trace
 * lines) may hold any byte.  Shown raw, C0 and C1 controls drive the
 * terminal: ESC [ ... and the 8-bit CSI 0x9B both start a control
 * sequence that can clear the screen, move the cursor, retitle the
 * window or, on some terminals, answer back into the input.  pf_escape()
 * turns such text into a line that is valid UTF-8, has no control
 * character at all and still reads as the original wherever the original
 * was printable:
 *
 *   - printable ASCII (0x20-0x7E) and valid UTF-8 text are copied;
 *   - every other byte becomes "\xNN" (two lowercase hex digits):
 *       C0 (0x00-0x1F, TAB included: a tab could hide text in a log
 *       line as well as a CR could), DEL (0x7F),
 *       C1 (U+0080-U+009F, each byte of its UTF-8 form: "\xc2\x9b"),
 *       bytes that are not valid UTF-8 (RFC 3629: stray continuation
 *       bytes, overlong forms, surrogates U+D800-U+DFFF, code points past
 *       U+10FFFF, 0xC0/0xC1/0xF5-0xFF, a sequence cut short): "\x9b",
 *       and the few valid characters that reorder or break a line rather
 *       than print (ARABIC LETTER MARK U+061C, LRM/RLM U+200E-U+200F,
 *       U+2028-U+2029 line/paragraph separators, the bidi embeddings,
 *       overrides and isolates U+202A-U+202E and U+2066-U+2069), each
 *       byte of their UTF-8 form;
 *   - a backslash becomes "\\", so the result is unambiguous: "\x9b"
 *     in the output is always the byte 0x9B, never the four characters
 *     the server may have sent.
 *
 * The output never ends in the middle of an escape or of a UTF-8
 * character: what does not fit is left out whole, and the output is
 * always NUL-terminated (when outsz > 0).  Each input byte costs at most
 * 4 output bytes: PF_ESCAPE_SIZE(n) always holds the escape of n bytes.
 */
#ifndef POPFETCH_ESCAPE_H
#define POPFETCH_ESCAPE_H

#include <stddef.h>

/* Room for the escape of n input bytes, NUL included. */
#define PF_ESCAPE_SIZE(n)	((n) * 4 + 1)

/*
 * pf_escape_ext() flags.
 *
 * PF_ESCAPE_KEEP_BACKSLASH: copy '\' as it is.  For a second pass over
 * text that may already be escaped (the log lines, the error object's
 * own words): with it, pf_escape_ext() changes nothing in text that it
 * (or pf_escape) produced, so nothing is escaped twice; the price is that
 * in text not escaped at its source a literal "\x9b" and the byte 0x9B
 * look alike.  Safe either way; unambiguous only without the flag.
 */
#define PF_ESCAPE_KEEP_BACKSLASH	0x1

/*
 * Escape inlen bytes of `in` (inlen == (size_t)-1: `in` is a C string)
 * into out[outsz].  Returns the length written, NUL excluded (strlen(out)).
 * With outsz == 0 nothing is written (out may then be NULL).  To know
 * whether all of `in` fitted, use pf_escape_ext() or size out with
 * PF_ESCAPE_SIZE(inlen).
 */
size_t	pf_escape(const char *in, size_t inlen, char *out, size_t outsz);

/*
 * pf_escape() with flags (PF_ESCAPE_*).  If used_r is not NULL, *used_r is
 * how many bytes of `in` the output covers: inlen when everything fitted,
 * less (always at a character boundary) when out was too small.
 */
size_t	pf_escape_ext(const char *in, size_t inlen, char *out, size_t outsz,
	    unsigned flags, size_t *used_r);

/* pf_escape() into a new string (xmalloc: never NULL); the caller frees it. */
char	*pf_escape_dup(const char *in, size_t inlen);

#endif
