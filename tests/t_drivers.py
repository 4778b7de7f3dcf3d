# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tree restored by several drivers at once (src/engine/restore-drivers.c,
STASIS_DRIVERS=N; 1 is the old order, one process after another): the
zdtm tree (pipes between processes, a shared open file, a thread, groups,
a session, a zombie) and drivers_quiet (no SIGCHLD or child event from
the handover) pass with one driver and with more drivers than processes
need; a failure injected in the middle of one process's body, on a driver
thread or on the main one while the others work, fails the restore with
one line, leaves nothing of the tree, and the image restores again (the
failing restore also under ASan)."""
import os
import re
import time

import stasistest as st
from runner import Test, TestFail
from checks import expect_killed, expect_one_line, restore_again


def dump_tree(ctx, wl):
    w = ctx.workload(wl)
    pid = w.pid
    pids = sorted(st.tree_info(pid))
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    for p in pids:
        if not st.pid_gone(p, 5):
            raise TestFail('pid %d of the dumped tree is still there' % p)
    return w, pid, pids, img


def nothing_left(pids):
    end = time.monotonic() + 3
    while True:
        left = {p: st.proc_state(p) for p in pids if st.proc_state(p) is not None}
        if not left or time.monotonic() > end:
            break
        time.sleep(0.05)
    if left:
        raise TestFail('the failed restore left %s' % ', '.join('pid %d (%s)' % kv for kv in sorted(left.items())))


def drivers_of(log):
    """{driver: [process index, ...]} from a restore's log file."""
    out = {}
    with open(log) as f:
        for m in re.finditer(r'restore driver (\d+) has processes ([\d ]+)', f.read()):
            out[int(m.group(1))] = [int(x) for x in m.group(2).split()]
    return out


def t_drivers_pass(ctx, wl, n):
    w, pid, _, img = dump_tree(ctx, wl)
    _, pid2, wfd = ctx.restore(img, env={'STASIS_DRIVERS': str(n)})
    if pid2 != pid:
        raise TestFail('restore gave pid %s, expected %d' % (pid2, pid))
    used = drivers_of(img + '-restore.log')
    if n > 1 and len(used) < 2:
        raise TestFail('STASIS_DRIVERS=%d: the log shows %d drivers' % (n, len(used)))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('restored by %d drivers: %s' % (n, err))


def t_fail_mid_body(ctx, on_main, binary=None):
    w, pid, pids, img = dump_tree(ctx, 'tree')
    env = {'STASIS_DRIVERS': '3'}
    # Which process each driver has comes from the planning, which the
    # failure does not change: a first failing run tells, a second one
    # fails the process wanted (on a driver thread, or the main one).
    for attempt in (0, 1):
        idx = 0 if on_main or attempt == 0 else target
        env['STASIS_INJECT_FAIL'] = 'restore:body:%d' % idx
        res, _, _ = ctx.restore(img, env=env, expect_ok=False, quiet=True, binary=binary)
        expect_one_line(res, 'restore with restore:body:%d injected' % idx,
                        r'injected failure at restore:body:%d' % idx)
        nothing_left(pids)
        used = drivers_of(img + '-restore.log')
        os.unlink(img + '-restore.log')
        if len(used) < 2:
            raise TestFail('the log shows %d drivers, expected several' % len(used))
        others = sorted(i for k, v in used.items() if k for i in v)
        target = others[len(others) // 2]
        if on_main:
            break
    restore_again(ctx, img, pid, w)


def tests(r):
    asan = [Test('asan:drivers:fail-mid-body', t_fail_mid_body, 180, False, r.asan_stasis)] if r.asan_stasis else []
    return asan + [
        Test('drivers:tree:1', t_drivers_pass, 60, 'tree', 1),
        Test('drivers:tree:8', t_drivers_pass, 60, 'tree', 8),
        Test('drivers:quiet:8', t_drivers_pass, 60, 'drivers_quiet', 8),
        Test('drivers:fail-mid-body', t_fail_mid_body, 90, False),
        Test('drivers:fail-mid-body:main', t_fail_mid_body, 90, True),
    ]
