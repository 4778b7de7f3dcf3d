# SPDX-License-Identifier: LGPL-2.1-or-later
"""Process-level state around the tree: a restore that fails after it made
zombies (killed by SIGKILL among them) says so in one line and leaves no
process and no zombie of the tree behind, and the image still restores;
processes sharing memory (CLONE_VM without threads) are refused in one
line naming both, the workload unharmed; a restore run with signals
ignored (nohup, a shell's background job) gives the tree the original's
signal dispositions."""
import os
import time

import stasistest as st
from runner import Test, TestFail
from checks import expect_killed, expect_one_line, expect_refused_unharmed, restore_img_and_pass


def t_zombies_failed_restore(ctx):
    w = ctx.workload('zombies')
    pid = w.pid
    pids = sorted(st.tree_info(pid))
    if len(pids) < 6:
        raise TestFail('the workload has %d processes, expected 6 (five zombies)' % len(pids))
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    for p in pids:  # the original zombies, adopted by us (the runner)
        if not st.pid_gone(p, 5):
            raise TestFail('pid %d of the dumped tree is still there' % p)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'restore:after-mm'}, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore with restore:after-mm injected')
    # Nothing of the tree is left, not even a zombie waiting for someone
    # to reap it (we do not reap here: stasis must have).
    end = time.monotonic() + 2
    while True:
        left = {p: st.proc_state(p) for p in pids if st.proc_state(p) is not None}
        if not left or time.monotonic() > end:
            break
        time.sleep(0.05)
    if left:
        raise TestFail('the failed restore left %s' % ', '.join('pid %d (%s)' % kv for kv in sorted(left.items())))
    restore_img_and_pass(ctx, img, pid, w)


def t_ignored_signals(ctx):
    # stasis run with SIGHUP, SIGINT and SIGQUIT ignored, as under nohup or
    # in a shell's background job, whose children inherit that through
    # exec: the restored tree has the original's dispositions, and the
    # zombie that died of SIGQUIT with a core dies of it again (before,
    # the ignored SIGQUIT let the zombie's stub run on into a trap).
    w = ctx.workload('zombies')
    ign = st.read_status(w.pid)['SigIgn']
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    wrapper = ctx.path('stasis-ignoring')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/sh\ntrap "" HUP INT QUIT\nexec %s "$@"\n' % ctx.r.stasis)
    os.chmod(wrapper, 0o755)
    if not st.pid_gone(w.pid, 3):
        raise TestFail('pid %d is not free for the restore' % w.pid)
    _, pid, wfd = ctx.restore(img, binary=wrapper)
    now = st.read_status(pid)['SigIgn']
    if now != ign:
        raise TestFail('the restored process ignores signals %s, the original %s' % (now, ign))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('restored under ignored signals: %s' % err)


def t_vfork(ctx):
    w = ctx.workload('shared_tables', args=('vfork',))
    kids = [p for p in st.tree_info(w.pid) if p != w.pid]
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    line = expect_one_line(res, 'dump of a parent waiting in vfork', r'vfork child')
    for need in [w.pid] + kids:
        if str(need) not in line:
            raise TestFail('the refusal does not name pid %d: %s' % (need, line))
    expect_refused_unharmed(ctx, w, before, img)


TESTS = [
    Test('fail:vfork', t_vfork, 60),
    Test('fail:inject:restore:zombies', t_zombies_failed_restore, 60),
    Test('process:ignored-signals', t_ignored_signals, 60),
]
