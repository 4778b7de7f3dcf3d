# SPDX-License-Identifier: LGPL-2.1-or-later
"""Incremental dumps (predump.h): pre-dumps taken while zdtm/predump.c
keeps rewriting its pages (and forking, mprotect'ing, dropping pages with
madvise and moving a region with mremap), then a final dump with
--parent: the restored process checks every page. A damaged, changed or
missing parent image is refused with one line, and leaves nothing
behind; a pre-dump whose tracking is gone is followed by a full dump."""
import os
import re
import signal
import time

import stasistest as st
from runner import Test, TestFail
from checks import expect_killed


def pages_bytes(img, pid):
    """The page data of pid (a child forked at that moment is saved whole)."""
    return os.path.getsize(os.path.join(img, 'pages-%d.img' % pid))


def dump(ctx, pid, img, extra, binary=None):
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(pid), '-D', img, '-v', '--log-file',
                      img + '-dump.log'] + extra, binary=binary)
    if res.rc != 0:
        raise TestFail('dump %s' % res.what())
    return res


def chain(ctx, w, n, binary=None):
    """n pre-dumps then the final dump, the workload writing meanwhile."""
    imgs = []
    for i in range(n + 1):
        img = ctx.path('d%d' % i)
        extra = (['--pre-dump'] if i < n else []) + (['--parent', imgs[-1]] if imgs else [])
        tree = st.tree_info(w.pid)  # a child the workload forked may be in it
        dump(ctx, w.pid, img, extra, binary)
        imgs.append(img)
        if i < n:
            if st.pid_gone(w.pid, 0):
                raise TestFail('the workload is gone after pre-dump %d' % i)
            time.sleep(0.5)
    expect_killed(w.pid)
    for p in tree:
        if not st.pid_gone(p, 5):
            raise TestFail('pid %d is left after the final dump killed the tree' % p)
    return imgs


def restore_finish(ctx, w, img, binary=None):
    ctx.fds.append(w.stdin_w)
    w.stdin_w = None
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '-v', '--log-file', img + '-restore.log'],
                         binary=binary, stdin=r)
    finally:
        os.close(r)
    if res.rc != 0 or res.out.strip() != str(w.pid):
        raise TestFail('restore %s, expected pid %d on stdout' % (res.what(), w.pid))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail('after restore: %s' % err)


def t_chain(ctx, ops, binary=None):
    w = ctx.workload('predump', ['16'] + (['ops'] if ops else []))
    imgs = chain(ctx, w, 2, binary)
    last = imgs[-1]
    if not [f for f in os.listdir(last) if f.startswith('chainpages-')]:
        raise TestFail('the final dump names no page of the parent chain: not incremental')
    full, incr = pages_bytes(imgs[0], w.pid), pages_bytes(last, w.pid)
    if ctx.r.verbose:
        print('  # pages: pre-dump %d KiB, final %d KiB' % (full >> 10, incr >> 10))
    if incr >= full:
        raise TestFail('the final dump saved %d bytes of pages, the first pre-dump %d: not incremental'
                       % (incr, full))
    restore_finish(ctx, w, last, binary)


def t_tracked_unharmed(ctx):
    """Tracking must not change what the program sees: it runs on with its
    forks, mprotects, madvises and mremaps after a pre-dump and passes."""
    w = ctx.workload('predump', ['16', 'ops'])
    ctx.dump(w.pid, ctx.path('d0'), ['--pre-dump'])
    time.sleep(2)
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail('after a pre-dump: %s' % err)


def expect_refused(ctx, img, pids, what, pattern):
    res, _, _ = ctx.restore(img, expect_ok=False, quiet=True)
    lines = [l for l in res.err.splitlines() if l.strip()]
    if res.rc == 0 or len(lines) != 1 or not re.search(pattern, lines[0]):
        raise TestFail('restore with %s: %s, expected one line matching %r' % (what, res.what(), pattern))
    left = [p for p in pids if not st.pid_gone(p, 3)]
    if left:
        raise TestFail('pids %s are left after the refused restore (%s)' % (left, what))


def t_parent_refused(ctx):
    w = ctx.workload('predump', ['8'])
    d0, d1 = chain(ctx, w, 1)
    pages = [os.path.join(d0, f) for f in os.listdir(d0) if f.startswith('pages-')][0]
    with open(pages, 'r+b') as f:
        f.seek(4096 * 3 + 17)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xff]))
    expect_refused(ctx, d1, [w.pid], 'a damaged parent page file', r'damaged|checksum')
    with open(pages, 'r+b') as f:
        f.seek(4096 * 3 + 17)
        f.write(b)
    man = os.path.join(d0, 'manifest.json')
    os.rename(man, man + '.orig')
    with open(man + '.orig') as src, open(man, 'w') as dst:
        dst.write(src.read() + '\n')
    expect_refused(ctx, d1, [w.pid], 'a changed parent', r'has changed')
    os.rename(man + '.orig', man)
    os.rename(d0, d0 + '.away')
    expect_refused(ctx, d1, [w.pid], 'a missing parent', r'missing')
    os.rename(d0 + '.away', d0)
    restore_finish(ctx, w, d1)


def t_keeper_gone(ctx):
    """The tracking's keeper killed: the next dump saves everything."""
    w = ctx.workload('predump', ['8'])
    res = ctx.dump(w.pid, ctx.path('d0'), ['--pre-dump'])
    m = re.search(r'kept by pid (\d+)', res.err)
    if not m:
        raise TestFail('pre-dump did not say who keeps the tracking: %r' % res.err[-300:])
    os.kill(int(m.group(1)), signal.SIGKILL)
    st.pid_gone(int(m.group(1)), 3)
    res = ctx.dump(w.pid, ctx.path('d1'), ['--parent', ctx.path('d0')])
    if 'saves all memory' not in res.err:
        raise TestFail('dump after the keeper died did not say it saves all memory: %r' % res.err[-300:])
    if [f for f in os.listdir(ctx.path('d1')) if f.startswith('chainpages-')]:
        raise TestFail('dump without tracking still names pages of the parent')
    expect_killed(w.pid)
    os.rename(ctx.path('d0'), ctx.path('d0.away'))  # a full dump needs no parent
    restore_finish(ctx, w, ctx.path('d1'))


def t_fail_after_reserve(ctx):
    """A final dump that fails once its page file was reserved ahead of
    the freeze (image_reserve) leaves the process as it was and no file;
    the next one works, and its page file holds only what was written."""
    w = ctx.workload('predump', ['8'])
    d0, d1, d2 = ctx.path('d0'), ctx.path('d1'), ctx.path('d2')
    dump(ctx, w.pid, d0, ['--pre-dump'])
    time.sleep(0.5)
    res = ctx.dump(w.pid, d1, ['--parent', d0, '-vv'], env={'STASIS_INJECT_FAIL': 'dump:after-seize'},
                   expect_ok=False)
    if res.rc != 1:
        raise TestFail('dump with an injected failure %s, expected exit 1' % res.what())
    with open(d1 + '-dump.log') as f:
        if 'of its page file reserved' not in f.read():
            raise TestFail('the failed dump reserved no page file: the test proves nothing')
    if os.path.exists(d1) and os.listdir(d1):
        raise TestFail('the failed dump left %s' % sorted(os.listdir(d1)))
    if st.pid_gone(w.pid, 0) or st.proc_state(w.pid) in ('t', 'T'):
        raise TestFail('the workload is gone or stopped after the failed dump')
    dump(ctx, w.pid, d2, ['--parent', d0])
    expect_killed(w.pid)
    restore_finish(ctx, w, d2)


def t_madvise_between(ctx, binary=None):
    """A whole-mapping madvise between the pre-dump and the final dump
    changes VmFlags and nothing in /proc/PID/maps: the final dump, which
    reads smaps beside its other work (mm-smaps.c), must still save it."""
    w = ctx.workload('predump_madv', [])
    d0, d1 = ctx.path('d0'), ctx.path('d1')
    dump(ctx, w.pid, d0, ['--pre-dump'], binary)
    os.kill(w.pid, signal.SIGUSR2)
    end = time.monotonic() + 30
    while 'STEP 1' not in w.log():
        if time.monotonic() > end:
            raise TestFail('the workload did not madvise its mappings: %r' % w.log()[-300:])
        time.sleep(0.02)
    dump(ctx, w.pid, d1, ['--parent', d0], binary)
    expect_killed(w.pid)
    if not [f for f in os.listdir(d1) if f.startswith('chainpages-')]:
        raise TestFail('the final dump names no page of the parent chain: not incremental')
    restore_finish(ctx, w, d1, binary)


def tests(r):
    out = [
        Test('predump:chain3', t_chain, 180, False),
        Test('predump:chain3-ops', t_chain, 180, True),
        Test('predump:tracked-unharmed', t_tracked_unharmed, 120),
        Test('predump:parent-refused', t_parent_refused, 180),
        Test('predump:keeper-gone', t_keeper_gone, 120),
        Test('predump:madvise-between', t_madvise_between, 120),
        Test('predump:fail-after-reserve', t_fail_after_reserve, 120),
    ]
    if r.asan_stasis:
        out.append(Test('asan:predump:chain3-ops', t_chain, 300, True, r.asan_stasis))
        out.append(Test('asan:predump:madvise-between', t_madvise_between, 300, r.asan_stasis))
    return out
