# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tree's pages filled by worker threads (engine/mm-fill.c) while the
restore makes the next process (zdtm/treemem.c: a root and its children,
each verifying its own memory): the tree restores with the default number
of workers, with one, and with none (STASIS_FILL_THREADS=0, each process
reading its own pages); a failure in a worker (injected, or a damaged page
file of a child, found while the other workers still fill, or a chunk of
one large page file) fails the restore with one line and leaves no
process of the tree behind."""
import os

import stasistest as st
from runner import Test, TestFail
from checks import expect_killed, expect_one_line, restore_img_and_pass

NPROC, MIB = 12, 4


def dumped_tree(ctx):
    """A treemem tree, dumped; returns (workload, its pids, image)."""
    w = ctx.workload('treemem', [str(NPROC), str(MIB)])
    tree = st.tree_info(w.pid)
    if len(tree) != NPROC:
        raise TestFail('the tree has %d processes, expected %d' % (len(tree), NPROC))
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    for pid in tree:
        if not st.pid_gone(pid, 5):
            raise TestFail('pid %d of the dumped tree is still there' % pid)
    return w, tree, img


def expect_tree_gone(tree, what):
    for pid in tree:
        if not st.pid_gone(pid, 5):
            raise TestFail('pid %d (state %s) is left after %s' % (pid, st.proc_state(pid), what))


def t_threads(ctx, threads):
    w, tree, img = dumped_tree(ctx)
    env = {'STASIS_FILL_THREADS': threads} if threads is not None else None
    _, pid, wfd = ctx.restore(img, env=env)
    if pid != w.pid:
        raise TestFail('restore gave pid %s, expected %d' % (pid, w.pid))
    if st.tree_info(pid) != tree:
        raise TestFail('the restored tree differs from the dumped one')
    log = open(img + '-restore.log').read()
    want = '%s threads fill memory' % (threads if threads is not None else min(os.cpu_count(), 64))
    if want not in log:
        raise TestFail('the restore log does not say "%s"' % want)
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail(err)


def t_inject(ctx):
    w, tree, img = dumped_tree(ctx)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'restore:fill'}, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore with a failing worker', 'injected failure at restore:fill')
    expect_tree_gone(tree, 'the failed restore')
    ctx.fds.append(w.stdin_w)  # the image is intact: restored again
    w.stdin_w = None
    restore_img_and_pass(ctx, img, w.pid, w)


def t_damaged_child(ctx):
    """The last child's page file damaged: its worker finds it while the
    tree is still being made; the restore names the file."""
    w, tree, img = dumped_tree(ctx)
    child = max(tree)
    p = os.path.join(img, 'pages-%d.img' % child)
    if not os.path.exists(p):
        raise TestFail('no page file %s in the image: %s' % (p, sorted(os.listdir(img))))
    b = bytearray(open(p, 'rb').read())
    b[len(b) // 2] ^= 0x40
    open(p, 'wb').write(bytes(b))
    res, _, _ = ctx.restore(img, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore of a damaged page file', r'pages-%d\.img.*damaged' % child)
    expect_tree_gone(tree, 'the refused restore')
    ctx.fds.append(w.stdin_w)
    w.stdin_w = None


def t_damaged_chunk(ctx):
    """One process's large page file, shared out among the workers in
    chunks, damaged in a late chunk: the restore is refused with one line
    naming the file before the process runs."""
    w = ctx.workload('bigmem', ['64'])
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    p = os.path.join(img, 'pages-%d.img' % w.pid)
    b = bytearray(open(p, 'rb').read())
    b[len(b) * 7 // 8] ^= 0x04
    open(p, 'wb').write(bytes(b))
    res, _, _ = ctx.restore(img, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore of a damaged page file', r'pages-%d\.img.*damaged' % w.pid)
    expect_tree_gone([w.pid], 'the refused restore')
    ctx.fds.append(w.stdin_w)
    w.stdin_w = None


TESTS = [
    Test('fill:threads-default', t_threads, 120, None),
    Test('fill:threads-1', t_threads, 120, '1'),
    Test('fill:threads-0', t_threads, 120, '0'),
    Test('fill:inject', t_inject, 120),
    Test('fill:damaged-child', t_damaged_child, 120),
    Test('fill:damaged-chunk', t_damaged_chunk, 120),
]
