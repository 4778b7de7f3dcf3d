# SPDX-License-Identifier: LGPL-2.1-or-later
"""Batched remote calls of the restore (src/engine/remote-batch.c): a call
failing in the middle of a batch (STASIS_INJECT_FAIL=remote:batch-call
makes one fail with ENOSYS, those before it made, those after not) fails
the restore with one line naming the pid and what failed, removes what it
made, and leaves the image good for the next restore."""
import stasistest as st
from runner import Test, TestFail
from checks import expect_killed, expect_one_line, restore_again


def t_batch_call_fails(ctx):
    w = ctx.workload('threads')
    pid = w.pid
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'remote:batch-call'}, expect_ok=False)
    expect_one_line(res, 'restore with a failing call in a batch',
                    r'pid %d: cannot .*: Function not implemented' % pid)
    if not st.pid_gone(pid, 3):
        raise TestFail('a process with pid %d (state %s) is left after the failed restore'
                       % (pid, st.proc_state(pid)))
    restore_again(ctx, img, pid, w)


def tests(r):
    return [Test('fail:inject:remote:batch-call', t_batch_call_fails, 60)]
