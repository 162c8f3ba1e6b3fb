#!/usr/bin/env python3
"""The demo behind scripts/demo: a throwaway Dovecot with sample mail on
127.0.0.1, popfetch fetching it into DEMO_DIR/Maildir, and what arrived.

usage: demo.py POPFETCH_BINARY DEMO_DIR
"""
import email
import email.policy
import os
import shutil
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(top, "tests", "integration"))

from pftest.certs import CertSet          # noqa: E402
from pftest.dovecot import Dovecot        # noqa: E402
from mailgen import MailGen               # noqa: E402


def run(argv):
    print("$ " + " ".join(argv), flush=True)
    return subprocess.run(argv).returncode


def main():
    binary, demo = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(demo, ignore_errors=True)
    os.makedirs(demo)
    server_dir = os.path.join(demo, "server")
    os.makedirs(server_dir)
    certs = CertSet(os.path.join(server_dir, "certs"))
    dc = Dovecot(os.path.join(server_dir, "dovecot"), certs)
    dc.add_user("demo", "demo-password")
    dc.start()
    gen = MailGen(seed=2026)
    msgs = [gen.message(size=s, subject="Sample message %d" % (i + 1))
            for i, s in enumerate([800, 2500, 6000, 1200, 40000, 3000,
                                   900, 15000, 2200, 5000])]
    dc.add_messages("demo", msgs)
    print("Dovecot is listening on 127.0.0.1:%d (POP3S) with %d messages "
          "for user 'demo'." % (dc.pop3s_port, len(msgs)))

    conf = os.path.join(demo, "popfetch.conf")
    with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
              "w") as f:
        f.write('state_dir = "%s"\n\n'
                'account demo {\n'
                '    host = "localhost"\n'
                '    port = %d\n'
                '    tls = implicit\n'
                '    tls_ca_file = "%s"\n'
                '    user = "demo"\n'
                '    password = "demo-password"\n'
                '    maildir = "%s"\n'
                '}\n' % (os.path.join(demo, "state"), dc.pop3s_port,
                         dc.ca_file, os.path.join(demo, "Maildir")))
    rc = 0
    try:
        rc = run([binary, "-c", conf, "accounts"]) or rc
        rc = run([binary, "-c", conf, "check"]) or rc
        rc = run([binary, "-c", conf, "fetch"]) or rc
        print()
        print("What arrived in %s/new:" % os.path.join(demo, "Maildir"))
        newdir = os.path.join(demo, "Maildir", "new")
        for name in sorted(os.listdir(newdir)):
            with open(os.path.join(newdir, name), "rb") as f:
                m = email.message_from_binary_file(f, policy=email.policy.default)
            print("  %-60s %s" % (name[:60], m["Subject"]))
        print()
        rc = run([binary, "-c", conf, "fetch"]) or rc
        rc = run([binary, "-c", conf, "status"]) or rc
    finally:
        dc.stop()
    print("\nThe server is stopped; the Maildir stays in %s." % demo)
    return rc


if __name__ == "__main__":
    sys.exit(main())
