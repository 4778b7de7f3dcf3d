# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the dump refuses among fds in flight (zdtm/inflight_kinds.c): an
epoll in flight that watches fds, whose targets are named by numbers of
the table of the process that added them. One line naming the socket's
pid and fd and the kind; the workload unharmed."""
import re

import stasistest as st
from runner import Test, TestFail
from checks import expect_refused_unharmed


def t_epoll(ctx):
    w = ctx.workload('inflight_kinds', args=('epoll-watching',))
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    for need in (str(w.pid), 'epoll', 'in flight'):
        if not re.search(r'\b%s\b' % re.escape(need), res.err):
            raise TestFail('error does not name %r: %s' % (need, res.last_err()))
    if len([l for l in res.err.splitlines() if l.startswith('stasis:')]) != 1:
        raise TestFail('expected one "stasis: ..." line on stderr, got: %r' % res.err[:300])
    expect_refused_unharmed(ctx, w, before, img)


def tests(r):
    return [Test('fail:inflight:epoll', t_epoll, 60)]
