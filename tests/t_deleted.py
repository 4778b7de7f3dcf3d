# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the dump refuses among deleted things and fd owners (one line
naming the pid and fd, the workload unharmed), zdtm/deleted_refusals.c:
a SIGIO owner outside the tree, a /proc entry of a process outside the
tree, an inotify watch on a deleted file no fd holds, a deleted file
larger than an image takes. And /proc entries of the tree restored with
--pidns (zdtm/procfs.c): they must name the restored processes there."""
import os
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


def t_procfs_pidns(ctx):
    """The original keeps its pids: --pidns restores the tree in a new pid
    namespace, whose own /proc the reopened entries must come from."""
    w = ctx.workload('procfs')
    img = ctx.path('img')
    ctx.dump(w.pid, img, ['--leave-running'])
    res, outer, _ = ctx.restore(img, extra=['--pidns'])
    err = w.finish_restored(outer, 'tree')
    if err:
        raise TestFail(err)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('the original, after the --pidns restore: %s' % err)


def t_fallback(ctx):
    """The old names cannot be made again (a file stands where their
    directory was): the deleted file and the FIFO come back unnamed
    elsewhere, with their content; nothing is left in the way."""
    w = ctx.workload('deleted_fallback')
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    if not st.pid_gone(w.pid, 10):
        raise TestFail('the original is still running after the dump')
    blocker = os.path.join(w.workdir, 'sub')
    with open(blocker, 'w') as f:
        f.write('in the way\n')
    res, pid, _ = ctx.restore(img)
    links = [os.readlink('/proc/%d/fd/%s' % (pid, fd)) for fd in os.listdir('/proc/%d/fd' % pid)]
    if any('/sub/' in l for l in links):
        raise TestFail('an fd was made under the blocked path: %s' % links)
    err = w.finish_restored(pid, 'process')
    if err:
        raise TestFail(err)
    if sorted(os.listdir(w.workdir)) != sorted(set(os.listdir(w.workdir))) or \
            any(n.startswith('.stasis-') for n in os.listdir(w.workdir)):
        raise TestFail('restore left something in the work directory: %s' % os.listdir(w.workdir))


def tests(r):
    out = [Test('fail:deleted:%s' % what, t_refused, 60, what, words) for what, words in CASES]
    out.append(Test('pidns:procfs', t_procfs_pidns, 60))
    out.append(Test('deleted:fallback', t_fallback, 60))
    return out
