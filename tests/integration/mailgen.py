#!/usr/bin/env python3
"""Deterministic generator of RFC 5322 test messages (standard library only).

Every message is bytes with LF line endings.  The same seed always gives the
same messages (no clock, no hash randomisation), so a failing test or a
benchmark can be reproduced exactly.

    from mailgen import MailGen, edge_case_messages, pop3_expected
    gen = MailGen(seed=7)
    msgs = gen.messages(1400, 2048, 10240)          # "1400 x 2-10 KB"
    one = gen.message(size=4000, edges=("dot_line", "long_line"))

Edge cases (names accepted by `edges=`):
  dot_line          a line that is just "."
  dot_start         lines starting with "." (".hidden", ". x")
  double_dot        lines starting with ".." and "..."
  utf8              8-bit UTF-8 text in the body
  latin1            8-bit Latin-1 bytes (not valid UTF-8) in the body
  long_line         one line longer than 10,000 characters
  empty_lines       several consecutive empty lines, and one at the end
  no_final_newline  the message does not end with a newline
  last_line_dot     the last body line is "." (the CRLF before the
                    terminator belongs to the message)

A POP3 server cannot represent a message without a final newline: it adds
CRLF before the terminating ".".  pop3_expected(msg) gives what a correct
POP3 client delivers (LF endings, always a final LF), which is what tests
compare against.

Command line (for benchmarks and manual runs):
    mailgen.py --seed 1 --count 1400 --size 2k-10k --out DIR [--edges all]
writes DIR/00000001.eml ... .
"""

import argparse
import os
import random
import sys
import time

EDGE_CASES = (
    "dot_line",
    "dot_start",
    "double_dot",
    "utf8",
    "latin1",
    "long_line",
    "empty_lines",
    "no_final_newline",
    "last_line_dot",
)

LONG_LINE_LEN = 12000

_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
    "xray yankee zulu mail post office protocol fetch maildir message server "
    "client queue batch retry lorem ipsum dolor sit amet consectetur adipiscing "
    "elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua"
).split()

_NAMES = ("Alice Example", "Bob Sender", "Carol Writer", "Dave Poster",
          "Erin Mailer", "Frank Notify", "Grace Hopper", "Heidi Klum")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
           "Oct", "Nov", "Dec")

# 2024-01-01T00:00:00Z; dates are spread over the following year.
_BASE_EPOCH = 1704067200


def _rfc5322_date(epoch):
    """Format a UTC epoch as an RFC 5322 date without using the local zone."""
    tm = time.gmtime(epoch)
    return "%s, %02d %s %04d %02d:%02d:%02d +0000" % (
        _DAYS[tm.tm_wday], tm.tm_mday, _MONTHS[tm.tm_mon - 1], tm.tm_year,
        tm.tm_hour, tm.tm_min, tm.tm_sec)


def parse_size(text):
    """'2k' -> 2048, '1M' -> 1048576, '300' -> 300 (also '2KB', '10 kb')."""
    t = text.strip().lower().replace(" ", "")
    if t.endswith("b") and len(t) > 1 and t[-2] in "km":
        t = t[:-1]
    mult = 1
    if t.endswith("k"):
        mult, t = 1024, t[:-1]
    elif t.endswith("m"):
        mult, t = 1024 * 1024, t[:-1]
    return int(float(t) * mult)


def parse_size_range(text):
    """'2k-10k' or '2-10KB' -> (2048, 10240); '4k' -> (4096, 4096)."""
    t = text.strip().lower().replace(" ", "")
    if "-" not in t:
        n = parse_size(t)
        return n, n
    lo, hi = t.split("-", 1)
    unit = ""
    for u in ("kb", "mb", "k", "m", "b"):
        if hi.endswith(u):
            unit = u
            break
    if unit and not lo[-1:].isalpha():
        lo += unit
    return parse_size(lo), parse_size(hi)


def pop3_expected(msg):
    """What a correct POP3 client delivers for `msg` as stored on a server:
    LF line endings and always a final newline."""
    msg = msg.replace(b"\r\n", b"\n")
    if not msg.endswith(b"\n"):
        msg += b"\n"
    return msg


def to_pop3_wire(msg):
    """The multi-line RETR body for `msg` (CRLF, dot-stuffed, with the
    terminating '.' line), as a correct server sends it."""
    msg = pop3_expected(msg)
    out = []
    for line in msg[:-1].split(b"\n"):
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


class MailGen:
    """Seeded message factory; every call advances one random stream."""

    def __init__(self, seed=0, domain="mailgen.example"):
        self.seed = seed
        self.domain = domain
        self.rng = random.Random(seed)
        self.count = 0

    def _words(self, n):
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def _text_line(self):
        return self._words(self.rng.randint(3, 12)).encode("ascii")

    def _edge_lines(self, edge):
        r = self.rng
        if edge == "dot_line":
            return [b"A line with just a dot follows:", b".", b"and text after it."]
        if edge == "dot_start":
            return [b".hidden line starting with a dot", b". spaced dot", b".x"]
        if edge == "double_dot":
            return [b"..two dots", b"...three dots", b"..", b"..."]
        if edge == "utf8":
            return [("Grüße aus Köln, naïve café, Ελληνικά, 日本語 %d"
                     % r.randint(0, 999)).encode("utf-8"),
                    "€ sign and emoji 😀".encode("utf-8")]
        if edge == "latin1":
            return [("Latin-1 bytes: caf\xe9 na\xefve \xfc\xdf %d"
                     % r.randint(0, 999)).encode("latin-1"),
                    b"raw high bytes: \xa0\xff\xfe\x80"]
        if edge == "long_line":
            n = LONG_LINE_LEN + r.randint(0, 500)
            return [b"L" + bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz ")
                                 for _ in range(n - 1))]
        if edge == "empty_lines":
            return [b"", b"", b"", b"after three empty lines"]
        return []

    def message(self, size=2048, edges=(), subject=None, from_addr=None,
                to_addr=None, body_lines=None):
        """One message of roughly `size` bytes (never less than its headers
        and requested edge cases) with the given edge cases."""
        for e in edges:
            if e not in EDGE_CASES:
                raise ValueError("unknown edge case %r" % (e,))
        r = self.rng
        self.count += 1
        n = self.count
        name = r.choice(_NAMES)
        if from_addr is None:
            from_addr = "%s <%s@%s>" % (name, name.split()[0].lower(), self.domain)
        if to_addr is None:
            to_addr = "Recipient <rcpt%d@%s>" % (r.randint(1, 9), self.domain)
        if subject is None:
            subject = "Test %d: %s" % (n, self._words(r.randint(2, 6)))
        epoch = _BASE_EPOCH + r.randint(0, 365 * 86400)
        msgid = "<%08x.%d.%d@%s>" % (r.getrandbits(32), self.seed, n, self.domain)
        eight_bit = "utf8" in edges or "latin1" in edges
        headers = [
            "From: %s" % from_addr,
            "To: %s" % to_addr,
            "Subject: %s" % subject,
            "Date: %s" % _rfc5322_date(epoch),
            "Message-ID: %s" % msgid,
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=%s" % (
                "utf-8" if "latin1" not in edges else "iso-8859-1"),
            "Content-Transfer-Encoding: %s" % ("8bit" if eight_bit else "7bit"),
            "X-Mailgen: seed=%d n=%d" % (self.seed, n),
        ]
        head = ("\n".join(headers) + "\n\n").encode("ascii")
        lines = []
        if body_lines is not None:
            lines.extend(body_lines)
        # Each edge case is a group of lines kept together.
        special = [g for g in (self._edge_lines(e) for e in edges) if g]
        filler_budget = max(0, size - len(head)
                            - sum(len(x) + 1 for g in special for x in g)
                            - sum(len(x) + 1 for x in lines))
        filler = []
        used = 0
        while used < filler_budget:
            ln = self._text_line()
            filler.append(ln)
            used += len(ln) + 1
        if not filler:
            filler.append(self._text_line())
        # Spread the groups through the filler text.
        body = list(lines)
        step = max(1, len(filler) // (len(special) + 1))
        si = 0
        for i, ln in enumerate(filler):
            body.append(ln)
            if si < len(special) and (i + 1) % step == 0:
                body.extend(special[si])
                si += 1
        for g in special[si:]:
            body.extend(g)
        if "empty_lines" in edges:
            body.append(b"")
        if "last_line_dot" in edges:
            body.append(b".")
        msg = head + b"\n".join(body) + b"\n"
        if "no_final_newline" in edges:
            msg = msg[:-1]
            if msg.endswith(b"\n"):     # an empty last line: keep some text
                msg += b"no newline at the end"
        return msg

    def messages(self, count, min_size=2048, max_size=10240, edges=()):
        """`count` messages with sizes uniformly in [min_size, max_size]."""
        return [self.message(size=self.rng.randint(min_size, max_size), edges=edges)
                for _ in range(count)]


def edge_case_messages(seed=1):
    """One message per edge case, then one message with all of them."""
    gen = MailGen(seed)
    out = [gen.message(size=1500, edges=(e,)) for e in EDGE_CASES]
    out.append(gen.message(size=3000, edges=EDGE_CASES))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write deterministic test messages.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--size", default="2k-10k", help="e.g. 4k, 2k-10k, 2-10KB")
    ap.add_argument("--edges", default="", help="comma list, or 'all'")
    ap.add_argument("--out", required=True, help="directory to write NNNNNNNN.eml into")
    a = ap.parse_args(argv)
    edges = EDGE_CASES if a.edges == "all" else tuple(x for x in a.edges.split(",") if x)
    lo, hi = parse_size_range(a.size)
    os.makedirs(a.out, exist_ok=True)
    gen = MailGen(a.seed)
    total = 0
    for i, m in enumerate(gen.messages(a.count, lo, hi, edges), 1):
        with open(os.path.join(a.out, "%08d.eml" % i), "wb") as f:
            f.write(m)
        total += len(m)
    print("%d messages, %d bytes, in %s" % (a.count, total, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
