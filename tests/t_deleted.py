# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the dump refuses among deleted things and fd owners (one line
naming the pid and fd, the workload unharmed), zdtm/deleted_refusals.c:
a SIGIO owner outside the tree, a /proc entry of a process outside the
tree, an inotify watch on a deleted file no fd holds, a deleted file
larger than an image takes."""
import re

import stasistest as st
from runner import Test, TestFail
from checks import expect_refused_unharmed


def t_refused(ctx, what, words):
    w = ctx.workload('deleted_refusals', args=(what,))
    before = st.snapshot(w.pid)
    fd = max(before['fds'])
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    for need in (str(w.pid), 'fd %d' % fd, words):
        if not re.search(need, res.err):
            raise TestFail('error does not name %r: %s' % (need, res.last_err()))
    if len([l for l in res.err.splitlines() if l.startswith('stasis:')]) != 1:
        raise TestFail('expected one "stasis: ..." line on stderr, got: %r' % res.err[:300])
    expect_refused_unharmed(ctx, w, before, img)


CASES = (('owner', r'SIGIO.*not part of the tree'), ('procfs', r'/proc/1/status.*not part of the tree'),
         ('inotify', r'no fd of the tree holds'), ('big', r'larger than the 64 GiB'))


def tests(r):
    out = [Test('fail:deleted:%s' % what, t_refused, 60, what, words) for what, words in CASES]
    return out
