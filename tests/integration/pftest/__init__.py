"""pftest: the integration-test harness of popfetch (standard library only).

A test script (tests/integration/*.t) starts with

    #!/usr/bin/env python3
    import os, sys
    sys.dont_write_bytecode = True          # never write into the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pftest
    from pftest import eq, ok, contains, like

    T = pftest.Suite(__file__)
    ...
    T.done()

See README.md next to this package.
"""

import os
import sys

sys.dont_write_bytecode = True
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import mailgen  # noqa: E402,F401  tests/integration/mailgen.py
import popserver  # noqa: E402,F401  tests/integration/popserver.py

from .tap import (Suite, TestTimeout, eq, ok, contains, not_contains,  # noqa: E402,F401
                  like, raises, terminal_safe)
from . import util  # noqa: E402,F401
from .util import free_port, port_open, wait_for, tail, children_of  # noqa: E402,F401
from .certs import CertSet, Cert, fingerprint  # noqa: E402,F401
from .dovecot import Dovecot, DovecotError  # noqa: E402,F401
from .popserv import PopServer, PopServerError  # noqa: E402,F401
from .popfetch import (Popfetch, Result, account_conf, conf_options,  # noqa: E402,F401
                       conf_value, Bare, write_config, read_maildir,
                       MaildirContents, strip_received_header, files_containing,
                       popfetch_binary)
from mailgen import MailGen, edge_case_messages, pop3_expected  # noqa: E402,F401
from .oauthsrv import OAuthServer  # noqa: E402,F401
