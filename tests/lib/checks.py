# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks shared by the test modules: the dump/restore cycle that compares
a process before and after, and what a refused or failed operation must
leave behind (nothing changed, nothing left running)."""
import os
import re
import signal
import time

import stasistest as st
from runner import TestFail


def expect_killed(pid, what='original', timeout=10):
    """The dumped original must have been killed with SIGKILL; reaps it."""
    status = st.wait_pid(pid, timeout)
    if status is None:
        raise TestFail('%s %d still running after dump' % (what, pid))
    if status != 'not-a-child' and not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        raise TestFail('%s %d ended with %s after dump, expected SIGKILL' % (what, pid, st.describe_status(status)))


def expect_refused_unharmed(ctx, w, before, img):
    """After a refused dump: no image, the workload unharmed and passing."""
    if os.path.exists(os.path.join(img, 'manifest.json')):
        raise TestFail('a failed dump left a complete image (manifest.json)')
    expect_alive_unharmed(w.pid, before, 'the failed dump')
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('after the failed dump: %s' % err)


def expect_alive_unharmed(pid, before, what):
    s = st.proc_state(pid)
    if s is None or s in 'ZX':
        raise TestFail('process %d is gone after %s' % (pid, what))
    time.sleep(0.05)
    s = st.proc_state(pid)
    if s in ('t', 'T'):
        raise TestFail('process %d left stopped (state %s) after %s' % (pid, s, what))
    st.wait_back_in_calls(pid, before)
    diffs = st.compare_snapshots(before, st.snapshot(pid))
    if diffs:
        raise TestFail('process changed by %s: %s' % (what, '; '.join(diffs)))


def dump_restore_cycle(ctx, w, tag, binary=None, dump_extra=(), running=False, restore_extra=()):
    """Snapshot, dump (kills), reap, restore --detach, compare. Returns the
    new stdin write end."""
    pid = w.pid
    st.wait_blocked(pid)  # in its wait, not on the way there
    before = st.snapshot(pid)
    tree_before = st.tree_info(pid)
    img = ctx.path('img-%s' % tag)
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(pid), '-D', img, '-v', '--log-file',
                      img + '-dump.log'] + list(dump_extra), binary=binary)
    if res.rc != 0:
        raise TestFail('dump %s' % res.what())
    expect_killed(pid)
    for p in tree_before:
        if not st.pid_gone(p, 3):
            raise TestFail('pid %d still exists after the dumped tree was killed' % p)
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '-v', '--log-file', img + '-restore.log']
                         + list(restore_extra), binary=binary, stdin=r)
    finally:
        os.close(r)
    if res.rc != 0:
        raise TestFail('restore %s' % res.what())
    m = re.search(r'^\s*(\d+)\s*$', res.out, re.M)
    if not m:
        raise TestFail('restore printed no pid: %r' % res.out[:200])
    if int(m.group(1)) != pid:
        raise TestFail('restore printed pid %s, expected %d' % (m.group(1), pid))
    if st.proc_ppid(pid) != os.getpid():
        s = st.proc_state(pid)
        raise TestFail('restored pid %d is %s' % (pid, 'gone' if s is None else
                                                   'not our child (ppid %s)' % st.proc_ppid(pid)))
    # Compared once the restored threads are back in the calls they were
    # blocked in (sigsuspend's temporary mask shows in SigBlk only then).
    st.wait_back_in_calls(pid, before)
    if st.proc_state(pid) in (None, 'Z', 'X'):
        raise TestFail('restored process %d died right after restore (%s)'
                       % (pid, st.describe_status(st.wait_pid(pid, 2))))
    try:
        after = st.snapshot(pid)
    except OSError as e:
        raise TestFail('cannot read /proc/%d after restore: %s' % (pid, e))
    if running:  # a process that keeps writing: positions move
        for s in (before, after):
            s['fds'] = {fd: v[:2] + ('-',) for fd, v in s['fds'].items()}
    diffs = st.compare_snapshots(before, after)
    if diffs:
        raise TestFail('after restore: %s' % '; '.join(diffs))
    tree_after = st.tree_info(pid)
    if tree_after != tree_before:
        lost = sorted(set(tree_before) - set(tree_after))
        changed = ['%d: %s -> %s' % (p, tree_before[p], tree_after.get(p)) for p in sorted(tree_before)
                   if p in tree_after and tree_before[p] != tree_after[p]]
        raise TestFail('tree after restore differs: lost %s; (ppid, pgid, sid, zombie) changed: %s'
                       % (lost, '; '.join(changed[:4])))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    return wfd


def restore_img_and_pass(ctx, img, pid, w, timeout=30):
    if not st.pid_gone(pid, 3):
        raise TestFail('pid %d is not free for the final restore' % pid)
    _, pid2, wfd = ctx.restore(img)
    if pid2 != pid:
        raise TestFail('restore gave pid %s, expected %d' % (pid2, pid))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(timeout))
    if err:
        raise TestFail('restore of the intact image: %s' % err)


def restore_again(ctx, img, pid, w, timeout=30):
    """After a failed restore of img: its workload's old stdin pipe goes
    (the failed restore's end is gone with it), and the image restores
    and passes, under the same pid."""
    ctx.fds.append(w.stdin_w)
    w.stdin_w = None
    restore_img_and_pass(ctx, img, pid, w, timeout)


def expect_one_line(res, what, pattern=None):
    """A refusal as a user sees it (no -v): exit 1 and exactly one line on
    stderr, "stasis: ...", matching pattern (a regex) when given."""
    if res.timed_out:
        raise TestFail('%s timed out' % what)
    if res.rc != 1:
        raise TestFail('%s %s, expected exit 1' % (what, res.what()))
    lines = res.err.splitlines()
    if len(lines) != 1 or not lines[0].startswith('stasis: '):
        raise TestFail('%s: expected one "stasis: ..." line on stderr, got %d: %r'
                       % (what, len(lines), res.err[:400]))
    if pattern and not re.search(pattern, lines[0]):
        raise TestFail('%s: the line does not say %r: %s' % (what, pattern, lines[0]))
    return lines[0]


def image_digest(img):
    """Name -> (mode, uid, content) of every file of an image directory."""
    out = {}
    for name in sorted(os.listdir(img)):
        p = os.path.join(img, name)
        s = os.lstat(p)
        if not os.path.isfile(p) or os.path.islink(p):  # never open a FIFO or follow a link
            out[name] = (s.st_mode, s.st_uid, os.readlink(p) if os.path.islink(p) else None)
            continue
        with open(p, 'rb') as f:
            out[name] = (s.st_mode, s.st_uid, f.read())
    return out
