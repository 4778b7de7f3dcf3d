# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the dump refuses among tables and fs info shared with a sibling
(zdtm/shared_siblings.c): a sibling that leads another session, which
the process made by its stub on restore could not leave. One line naming
both pids; the workload unharmed."""
import re

import stasistest as st
from runner import Test, TestFail
from checks import expect_refused_unharmed


def t_sibling_session(ctx):
    w = ctx.workload('shared_siblings', args=('session',))
    before = st.snapshot(w.pid)
    kids = sorted(p for p in st.tree_info(w.pid) if p != w.pid)  # a, b, c, d in the order made
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    for need in ['sibling', 'session'] + [str(k) for k in kids[:2]]:
        if not re.search(r'\b%s\b' % re.escape(need), res.err):
            raise TestFail('error does not name %r: %s' % (need, res.last_err()))
    if len([l for l in res.err.splitlines() if l.startswith('stasis:')]) != 1:
        raise TestFail('expected one "stasis: ..." line on stderr, got: %r' % res.err[:300])
    expect_refused_unharmed(ctx, w, before, img)


def tests(r):
    return [Test('fail:share:sibling-session', t_sibling_session, 60)]
