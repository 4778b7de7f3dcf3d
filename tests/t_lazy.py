# SPDX-License-Identifier: LGPL-2.1-or-later
"""restore --lazy (issue 13): the tree runs before its anonymous memory is
in; a filler of ours serves faults and streams the rest in 4 MiB
batches, checking every 64 KiB block. The workloads check their own memory while it is filled:
selfcheck.c reads its pages all the time (faults race the filler),
treemem.c has each process of a tree check its own. A damaged block kills
the tree with one line. Container: docker:lazy, run with the container tests."""
import json
import os
import re
import signal
import struct
import time

import stasistest as st
from checks import expect_killed
from runner import Test, TestFail


def dump_gone(ctx, w, img, binary=None):
    """Dump (kills) and wait until the pids are free again."""
    tree = st.tree_info(w.pid)
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img, '-v', '--log-file',
                      img + '-dump.log'], binary=binary)
    if res.rc != 0:
        raise TestFail('dump %s' % res.what())
    expect_killed(w.pid)
    for p in tree:
        if not st.pid_gone(p, 5):
            raise TestFail('pid %d still exists after the dumped tree was killed' % p)


def stats_of(out):
    """The --print-stats JSON line of stdout."""
    for line in out.splitlines():
        if line.startswith('{'):
            return json.loads(line)
    raise TestFail('no --print-stats line on stdout: %r' % out[:300])


def lazy_restore(ctx, w, img, binary=None, wait=True):
    """restore --detach --lazy; checks the pid, the maps and fds, the
    stats. Returns the stats."""
    st.wait_blocked(w.pid)
    before = st.snapshot(w.pid)
    dump_gone(ctx, w, img, binary)
    extra = ['--lazy', '--print-stats'] + (['--wait-lazy'] if wait else [])
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '-v', '--log-file', img + '-restore.log'] + extra,
                         binary=binary, stdin=r, timeout=ctx.left(300))
    finally:
        os.close(r)
    if res.rc != 0:
        raise TestFail('restore --lazy %s' % res.what())
    if not re.search(r'^%d$' % w.pid, res.out, re.M):
        raise TestFail('restore printed no pid %d: %r' % (w.pid, res.out[:200]))
    w.stdin_w = wfd
    s = stats_of(res.out)
    if wait and (s.get('lazy_state') != 'done' or s['lazy_filled'] != s['lazy_bytes'] or not s['lazy_bytes']):
        raise TestFail('fill not complete after --wait-lazy: %s' % s)
    if st.proc_state(w.pid) in (None, 'Z', 'X'):
        raise TestFail('restored process %d died: %s' % (w.pid, w.log_tail()))
    # Resumed at once: a thread faults its stack in before it re-enters
    # its call (sigsuspend reads its temporary mask from there).
    st.wait_back_in_calls(w.pid, before)
    diffs = st.compare_snapshots(before, st.snapshot(w.pid))
    if diffs:
        raise TestFail('after the lazy restore: %s' % '; '.join(diffs))
    print('  %s: resume %.1f ms, full %.1f ms, %d MiB lazy, %d faults' % (
        ctx.name, s['resume_time'] / 1e3, s.get('full_time', -1) / 1e3, s['lazy_bytes'] >> 20,
        s['lazy_faults']), flush=True)
    return s


def finish(ctx, w):
    err = w.finish(ctx.left(120))
    if err:
        raise TestFail(err)


def t_selfcheck(ctx, mb, binary):
    """Its pages are read all the time by the process: faults race the
    filler; then a final check of every page."""
    w = ctx.workload('selfcheck', [str(mb)])
    lazy_restore(ctx, w, ctx.path('img'), binary)
    finish(ctx, w)


def t_selfcheck_nowait(ctx):
    """Without --wait-lazy the command returns at resume; the process
    checks its memory while the filler works on."""
    w = ctx.workload('selfcheck', ['256'])
    lazy_restore(ctx, w, ctx.path('img'), wait=False)
    finish(ctx, w)


def t_fork(ctx):
    """Told to go as soon as it runs, the process forks, drops and moves
    its memory while the filler is still at work; parent and child check
    every page (forkcheck.c)."""
    w = ctx.workload('forkcheck', ['512'])
    s = lazy_restore(ctx, w, ctx.path('img'), wait=False)
    finish(ctx, w)
    if s.get('lazy_state') == 'done':
        print('  lazy:fork: the fill was over before the fork; the test proved less', flush=True)


def t_tree(ctx):
    w = ctx.workload('treemem', ['8', '32'])
    lazy_restore(ctx, w, ctx.path('img'))
    finish(ctx, w)


def flip(path, at):
    with open(path, 'r+b') as f:
        f.seek(at)
        b = f.read(16)
        f.seek(at)
        f.write(bytes(x ^ 0x5a for x in b))


def t_damaged(ctx, wait):
    """Bytes flipped 40 MiB into a child's page data: the tree (root and
    children) is killed by SIGKILL, and one line says so: on the restore's
    stderr with --wait-lazy, else in the log file (and syslog). A child's:
    the root's mappings that its children share are filled before they
    fork (damage there is found before anything runs: restore exits 1)."""
    w = ctx.workload('treemem', ['4', '64'])
    img = ctx.path('img')
    tree = st.tree_info(w.pid)
    dump_gone(ctx, w, img)
    victim = max(p for p in tree if p != w.pid)
    flip(os.path.join(img, 'pages-%d.img' % victim), 40 << 20)
    log = img + '-restore.log'
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '--lazy', '--log-file', log] +
                         (['--wait-lazy'] if wait else []), stdin=r, timeout=ctx.left(120))
    finally:
        os.close(r)
    want = "image file 'pages-%d.img' is damaged" % victim
    if wait:
        lines = res.err.strip().splitlines()
        if res.rc != 1 or len(lines) != 1 or want not in lines[0] or 'killed' not in lines[0]:
            raise TestFail('expected exit 1 and one line "%s ... killed", got %s' % (want, res.what()))
    elif res.rc != 0:
        raise TestFail('restore --lazy (damage found later) %s' % res.what())
    for p in tree:
        if not st.pid_gone(p, 30):
            raise TestFail('pid %d of the tree still runs on damaged memory' % p)
    w.pid = None
    with open(log, errors='replace') as f:
        found = [l for l in f if want in l]
    if not found:
        raise TestFail('the log file %s does not say %r' % (log, want))


def eager_page_offset(img, pid):
    """Byte offset in pages-PID.img of a page put in before the tree runs:
    one of a private file mapping (its copy-on-write pages)."""
    with open(os.path.join(img, 'mm-%d.json' % pid)) as f:
        vmas = [v for v in json.load(f)['vmas'] if v['kind'] == 'file' and not v['shared']]
    with open(os.path.join(img, 'pagemap-%d.img' % pid), 'rb') as f:
        data = f.read()
    for i in range(struct.unpack_from('<Q', data, 8)[0]):
        vaddr, n, off = struct.unpack_from('<QQQ', data, 16 + 24 * i)
        if any(v['start'] <= vaddr < v['end'] for v in vmas):
            return off
    raise TestFail('no page of a private file mapping in the image of pid %d' % pid)


def t_damaged_eager(ctx):
    """A damaged page among those filled before the tree runs (a
    copy-on-write page of a file mapping, checked with only the small
    blocks that hold it): the restore fails with one line before the
    process runs, and leaves nothing."""
    w = ctx.workload('bigmem', ['64'])
    img = ctx.path('img')
    pid = w.pid
    dump_gone(ctx, w, img)
    flip(os.path.join(img, 'pages-%d.img' % pid), eager_page_offset(img, pid) + 100)
    res = ctx.stasis(['restore', '-D', img, '--detach', '--lazy'], timeout=ctx.left(60))
    lines = res.err.strip().splitlines()
    want = "image file 'pages-%d.img' is damaged" % pid
    if res.rc != 1 or len(lines) != 1 or want not in lines[0]:
        raise TestFail('expected exit 1 and one line "%s", got %s' % (want, res.what()))
    if not st.pid_gone(pid, 10):
        raise TestFail('pid %d runs after a restore that found damage' % pid)
    w.pid = None


def t_damaged_sums(ctx):
    """Damaged block sums of pages filled lazily: the restore checks the
    whole sums file against the manifest before any page goes in, so the
    process never runs; one line says which file."""
    w = ctx.workload('bigmem', ['64'])
    img = ctx.path('img')
    pid = w.pid
    dump_gone(ctx, w, img)
    flip(os.path.join(img, 'pagesums-%d.img' % pid), 16 + ((40 << 20) >> 16) * 8)
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '--lazy', '--wait-lazy'], stdin=r,
                         timeout=ctx.left(60))
    finally:
        os.close(r)
    lines = res.err.strip().splitlines()
    want = "image file 'pagesums-%d.img' is damaged" % pid
    if res.rc != 1 or len(lines) != 1 or want not in lines[0]:
        raise TestFail('expected exit 1 and one line "%s", got %s' % (want, res.what()))
    if not st.pid_gone(pid, 30):
        raise TestFail('pid %d is left after its block sums were found damaged' % pid)
    w.pid = None


def filler_of(pid):
    """The filler serving pid: a stasis-filler whose warden holds pid's
    userfaultfd is hard to name from outside; there is one filler per
    lazy restore and the tests run one at a time."""
    for d in os.listdir('/proc'):
        try:
            with open('/proc/%s/comm' % d) as f:
                if f.read().strip() == 'stasis-filler':
                    return int(d)
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
    raise TestFail('no stasis-filler process while restoring pid %d' % pid)


def t_filler_killed(ctx):
    """The filler killed (SIGKILL) before it filled anything, while the
    process faults on its memory: the process must not run on with the
    zero pages the kernel would give once the filler's userfaultfds are
    closed. The filler's warden, which holds copies of them, kills the
    tree and says so in the log file."""
    w = ctx.workload('selfcheck', ['256'])
    img = ctx.path('img')
    dump_gone(ctx, w, img)
    log = img + '-restore.log'
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    try:
        res = ctx.stasis(['restore', '-D', img, '--detach', '--lazy', '--log-file', log], stdin=r,
                         env={'STASIS_INJECT_PAUSE': 'lazy:fill'}, timeout=ctx.left(120))
    finally:
        os.close(r)
    if res.rc != 0:
        raise TestFail('restore --lazy %s' % res.what())
    start = len(w.log())
    time.sleep(0.3)  # the process runs and waits on its first faults
    os.kill(filler_of(w.pid), signal.SIGKILL)
    if not st.pid_gone(w.pid, 10):
        raise TestFail('pid %d runs on after its filler was killed with pages still out' % w.pid)
    if 'FAIL' in w.log()[start:]:
        raise TestFail('the process saw wrong memory before it was killed: %r' % w.log()[start:][-300:])
    w.pid = None
    # The warden kills first and says so after: give it a moment.
    for _ in range(50):
        with open(log, errors='replace') as f:
            if any('the filler ended before every page was in' in l for l in f):
                return
        time.sleep(0.1)
    raise TestFail('the log file %s does not say why the process was killed' % log)


def tests(r):
    out = [
        Test('lazy:selfcheck-1g', t_selfcheck, 300, 1024, None),
        Test('lazy:selfcheck-nowait', t_selfcheck_nowait, 120),
        Test('lazy:tree', t_tree, 120),
        Test('lazy:fork', t_fork, 180),
        Test('lazy:damaged', t_damaged, 120, True),
        Test('lazy:damaged-detached', t_damaged, 120, False),
        Test('lazy:damaged-eager', t_damaged_eager, 120),
        Test('lazy:damaged-sums', t_damaged_sums, 120),
        Test('lazy:filler-killed', t_filler_killed, 120),
        Test('docker:lazy', t_docker, 240),
    ]
    if r.asan_stasis:
        out.append(Test('asan:lazy:selfcheck-1g', t_selfcheck, 300, 1024, r.asan_stasis))
    return out


# A shell holding 32 MiB of random text in a variable (its heap), with its
# checksum saved; on /data/check it sums the variable again.
MEMSH = ('echo 1 > /data/count; x=$(busybox head -c 24000000 /dev/urandom | busybox base64); echo "$x" | busybox md5sum > /data/sum; '
         'while :; do if [ -e /data/check ]; then echo "$x" | busybox md5sum > /data/sum2; rm /data/check; fi; '
         'echo tick; sleep 0.1; done')


def t_docker(ctx):
    """A Docker container restored lazily (its seccomp profile is
    Docker's default): it runs, and the memory it sums is what it was."""
    import dockerd
    from containers import docker_dump, remove, stasis
    d = dockerd.shared(ctx)
    name, new = 'stasis-lz1-%d' % os.getpid(), 'stasis-lz2-%d' % os.getpid()
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c', MEMSH)
        d.docker('exec', name, 'sh', '-c', 'while [ ! -s /data/sum ]; do sleep 0.1; done')
        sum1 = d.docker('exec', name, 'cat', '/data/sum').stdout.decode().split()[0]
        img = ctx.path('img')
        docker_dump(ctx, d, name, img)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '--lazy', '--wait-lazy', '--print-stats', '-v',
                   '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore --lazy exit %d: %s' % (r.returncode, r.stderr[-300:]))
        s = stats_of(r.stdout)
        if s.get('lazy_state') != 'done' or s['lazy_bytes'] < (24 << 20):
            raise TestFail('the container\'s memory was not filled lazily: %s' % s)
        d.docker('exec', new, 'sh', '-c', 'echo > /data/check; while [ -e /data/check ]; do sleep 0.1; done')
        sum2 = d.docker('exec', new, 'cat', '/data/sum2').stdout.decode().split()[0]
        if sum2 != sum1:
            raise TestFail('the restored container\'s memory differs: md5 %s, was %s' % (sum2, sum1))
        print('  docker:lazy: resume %.1f ms, full %.1f ms, %d MiB lazy' % (
            s['resume_time'] / 1e3, s['full_time'] / 1e3, s['lazy_bytes'] >> 20), flush=True)
    finally:
        remove(d, name, new)
