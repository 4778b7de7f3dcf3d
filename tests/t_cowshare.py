# SPDX-License-Identifier: LGPL-2.1-or-later
"""Copy-on-write sharing between forked processes (zdtm/cowshare.c: a
root that filled its memory and workers forked after, which only read
it): the tree's memory (the sum of Pss over its processes) is the same
after restore as before, within 10%; each shared page is saved once, so
the image follows the tree's distinct memory, not its sum; a dump with
--leave-running does not unshare the original's pages; a restore that
fails after the memory is made leaves nothing behind."""
import os

import stasistest as st
from runner import Test, TestFail
from checks import dump_restore_cycle, expect_alive_unharmed, expect_killed, restore_again


def tree_pss_kib(root):
    """Sum of Pss (KiB) of root and its descendants."""
    total = 0
    for pid in st.tree_info(root):
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith('Pss:'))
        except OSError:
            continue
    return total


def image_mib(img):
    return sum(os.path.getsize(os.path.join(img, f)) for f in os.listdir(img)) / (1 << 20)


def within(before, after, frac):
    return abs(after - before) <= frac * before


def t_pss(ctx, workers, mib, max_image_mib):
    w = ctx.workload('cowshare', [str(workers), str(mib)])
    pid = w.pid
    if len(st.tree_info(pid)) != workers + 2:  # and a grandchild
        raise TestFail('the tree has %d processes, expected %d' % (len(st.tree_info(pid)), workers + 2))
    before = tree_pss_kib(pid)
    dump_restore_cycle(ctx, w, '0')
    after = tree_pss_kib(pid)
    size = image_mib(ctx.path('img-0'))
    if ctx.r.verbose:
        print('  # tree Pss %d MiB before, %d MiB after; image %.1f MiB' % (before >> 10, after >> 10, size))
    if not within(before, after, 0.10):
        raise TestFail('the tree uses %d MiB (Pss) after restore, %d MiB before: sharing lost'
                       % (after >> 10, before >> 10))
    ins = ctx.stasis(['inspect', ctx.path('img-0')])
    if ins.rc != 0 or 'shared with its parent' not in ins.out:
        raise TestFail('inspect does not say which pages are shared with the parent: %s' % ins.what())
    if size > max_image_mib:
        raise TestFail('image of %d workers sharing %d MiB is %.0f MiB, at most %d expected'
                       % (workers, mib, size, max_image_mib))
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail(err)


def t_leave_running(ctx):
    w = ctx.workload('cowshare', ['4', '64'])
    pid = w.pid
    before, snap = tree_pss_kib(pid), st.snapshot(pid)
    ctx.dump(pid, ctx.path('img'), ['--leave-running'])
    expect_alive_unharmed(pid, snap, 'dump --leave-running')
    after = tree_pss_kib(pid)
    if not within(before, after, 0.10):
        raise TestFail('dump --leave-running grew the tree from %d to %d MiB (Pss): it unshared pages'
                       % (before >> 10, after >> 10))
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail(err)


def t_inject_after_mm(ctx):
    """The children are made (with their memory) before the failure: all
    of them must go, and the image must still restore."""
    w = ctx.workload('cowshare', ['3', '16'])
    pid = w.pid
    pids = list(st.tree_info(pid))
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'restore:after-threads'}, expect_ok=False)
    if res.rc != 1:
        raise TestFail('restore with a failure injected %s, expected exit 1' % res.what())
    left = [p for p in pids if not st.pid_gone(p, 3)]
    if left:
        raise TestFail('pids %s are left after the failed restore' % left)
    restore_again(ctx, img, pid, w, 60)


TESTS = [
    Test('cow:pss', t_pss, 300, 9, 256, 300),
    Test('cow:image-size', t_pss, 300, 10, 128, 300),
    Test('cow:leave-running', t_leave_running, 120),
    Test('cow:restore-failure', t_inject_after_mm, 120),
]
