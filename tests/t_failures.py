# SPDX-License-Identifier: LGPL-2.1-or-later
"""What must fail, and fail cleanly: states the dump refuses (an
unsupported fd, an established TCP connection, a controlling terminal, a
reparented session member), failures injected at points of dump and
restore, damaged images, a restore over a live pid; and the options that
get around some of them (--leave-running, --tcp-close, --pidns), the
cgroup freezer and a zombie holding the pid. A refused or failed
operation must leave the process unharmed and no image or process behind."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import stasistest as st
from runner import Test, TestFail, TestSkip
from checks import (dump_restore_cycle, expect_alive_unharmed, expect_killed, expect_one_line,
                    expect_refused_unharmed, restore_again, restore_img_and_pass)

def t_unsupported_fd(ctx, binary=None):
    w = ctx.workload('unsupported_fd')
    efd = [int(fd) for fd in os.listdir('/proc/%d/fd' % w.pid)
           if os.readlink('/proc/%d/fd/%s' % (w.pid, fd)) == 'anon_inode:[userfaultfd]']
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img], binary=binary)
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    msg = res.err
    for need, what in ((str(w.pid), 'the pid'), (str(efd[0]) if efd else '?', 'the fd number'),
                       ('userfaultfd', 'the fd kind')):
        if not re.search(r'\b%s\b' % re.escape(need), msg):
            raise TestFail('error does not name %s (%s): %s' % (what, need, res.last_err()))
    if len([l for l in msg.splitlines() if l.startswith('stasis:')]) != 1:
        raise TestFail('expected one "stasis: ..." line on stderr, got: %r' % msg[:300])
    expect_refused_unharmed(ctx, w, before, img)


def t_foreign_fd(ctx, arg, kind):
    """A pidfd or namespace fd naming something outside the tree: the dump
    refuses with one line naming pid, fd and kind, the workload unharmed."""
    w = ctx.workload('foreign_fds', args=(arg,))
    before = st.snapshot(w.pid)
    fd = max(before['fds'])
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    for need in (str(w.pid), str(fd), kind):
        if not re.search(r'\b%s\b' % re.escape(need), res.err):
            raise TestFail('error does not name %s: %s' % (need, res.last_err()))
    if len([l for l in res.err.splitlines() if l.startswith('stasis:')]) != 1:
        raise TestFail('expected one "stasis: ..." line on stderr, got: %r' % res.err[:300])
    expect_refused_unharmed(ctx, w, before, img)


def t_inject_dump(ctx, point, wl):
    w = ctx.workload(wl)
    before = st.snapshot(w.pid)
    res = ctx.dump(w.pid, ctx.path('img'), env={'STASIS_INJECT_FAIL': point}, expect_ok=False)
    if res.rc != 1:
        raise TestFail('dump with %s injected %s, expected exit 1' % (point, res.what()))
    expect_alive_unharmed(w.pid, before, 'the failed dump')
    img = ctx.path('img')
    if os.path.exists(img) and os.listdir(img):
        raise TestFail('the failed dump left files behind: %s' % sorted(os.listdir(img)))
    err = w.finish(ctx.left(30), 'wake up\n' if wl == 'restart' else None)
    if err:
        raise TestFail('after the failed dump: %s' % err)


def t_inject_restore(ctx, point):
    w = ctx.workload('threads')
    pid = w.pid
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': point}, expect_ok=False)
    if res.rc != 1:
        raise TestFail('restore with %s injected %s, expected exit 1' % (point, res.what()))
    if str(pid) not in res.err and ctx.r.verbose:
        print('  # note: restore error does not name the pid: %s' % res.last_err())
    if not st.pid_gone(pid, 3):
        raise TestFail('a process with pid %d (state %s) is left after the failed restore'
                       % (pid, st.proc_state(pid)))
    # the image must be untouched: a second restore works
    restore_again(ctx, img, pid, w)


def t_leave_running(ctx):
    w = ctx.workload('threads')
    pid = w.pid
    before = st.snapshot(pid)
    img = ctx.path('img')
    ctx.dump(pid, img, ['--leave-running'])
    expect_alive_unharmed(pid, before, 'dump --leave-running')
    res, _, _ = ctx.restore(img, expect_ok=False)
    if res.rc != 1:
        raise TestFail('restore while the original runs %s, expected exit 1' % res.what())
    if not re.search(r'\b%d\b' % pid, res.err):
        raise TestFail('restore error does not name pid %d: %s' % (pid, res.last_err()))
    expect_alive_unharmed(pid, before, 'the refused restore')
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('original after --leave-running: %s' % err)
    # the image taken while it kept running restores fine afterwards
    restore_img_and_pass(ctx, img, pid, w)


def t_tcp_established(ctx):
    # An established connection is refused before anything changes: the
    # message names pid, fd and kind; the process carries on unharmed.
    w = ctx.workload('tcp_conn')
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
    if res.rc != 1:
        raise TestFail('dump %s, expected exit 1' % res.what())
    m = re.search(r'pid (\d+): fd (\d+) is an established TCP connection', res.err)
    if not m or int(m.group(1)) != w.pid:
        raise TestFail('error does not name pid, fd and kind: %s' % res.last_err())
    if not os.readlink('/proc/%d/fd/%s' % (w.pid, m.group(2))).startswith('socket:'):
        raise TestFail('fd %s named by the error is not a socket' % m.group(2))
    expect_refused_unharmed(ctx, w, before, img)


def t_tcp_close(ctx):
    w = ctx.workload('tcp_conn', ['closed'])
    dump_restore_cycle(ctx, w, '0', dump_extra=['--tcp-close'])
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail(err)


def t_pidns(ctx):
    # The original keeps running (its pids are taken): a plain restore
    # must refuse naming the pid, --pidns restores the tree in a new pid
    # namespace under its own pids, and both copies pass. (The workload
    # checks nothing outside its tree: in the namespace, the root's parent
    # is the namespace's init.)
    w = ctx.workload('shm')
    img = ctx.path('img')
    ctx.dump(w.pid, img, ['--leave-running'])
    res, _, _ = ctx.restore(img, expect_ok=False)
    if res.rc != 1 or not re.search(r'pid %d is in use.*--pidns' % w.pid, res.err):
        raise TestFail('restore over the live pid %s: %s' % (res.what(), res.last_err()))
    res, outer, _ = ctx.restore(img, extra=['--pidns'])
    nspid = open('/proc/%d/status' % outer).read().split('NSpid:')[1].split('\n')[0].split()
    if [int(x) for x in nspid] != [outer, w.pid]:
        raise TestFail('restored root has NSpid %s, expected %d %d' % (nspid, outer, w.pid))
    err = w.finish_restored(outer, 'tree')
    if err:
        raise TestFail(err)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('the original, after the --pidns restore: %s' % err)


def t_ctty(ctx):
    # A session leader whose controlling terminal's master is outside the
    # tree (the shell under `script`, dumped without script) is refused,
    # naming the pid; it keeps running. (With script in the tree, as in
    # prog:script, it is restored: tests/t_terminals.py.)
    script = shutil.which('script')
    if not script:
        raise TestSkip('no script(1)')
    p = subprocess.Popen([script, '-qfc', 'sleep 60', '/dev/null'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        leader = None
        for _ in range(100):
            kids = st.tree_info(p.pid)
            leader = next((k for k, v in kids.items() if k != p.pid and v[2] == k), None)
            if leader:
                break
            time.sleep(0.05)
        if not leader:
            raise TestFail('script started no session')
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(leader), '-D', ctx.path('img')])
        if res.rc != 1 or not re.search(r'pid %d leads a session with a controlling terminal .* whose master is not held by the tree'
                                         % leader, res.err):
            raise TestFail('dump %s: %s' % (res.what(), res.last_err()))
        if st.proc_state(leader) not in ('S', 'R'):
            raise TestFail('the session leader is %s after the refused dump' % st.proc_state(leader))
    finally:
        for pid in st.tree_info(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()


def t_escapee(ctx):
    # A process of the tree's session that was reparented away (a
    # background job of a subshell) would be left behind: the dump
    # refuses, naming it, and changes nothing.
    p = subprocess.Popen(['bash', '-c', '(sleep 60 &); exec sleep 61'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        stray = None
        for _ in range(100):
            stray = next((int(d) for d in os.listdir('/proc') if d.isdigit() and int(d) != p.pid
                          and st.proc_sid(int(d)) == p.pid), None)
            if stray and open('/proc/%d/comm' % p.pid).read().strip() == 'sleep':
                break
            time.sleep(0.05)
        if not stray:
            raise TestFail('no reparented process appeared')
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(p.pid), '-D', ctx.path('img')])
        if res.rc != 1 or not re.search(r'pid %d \(sleep\) is in session %d of the tree but is not a descendant'
                                        % (stray, p.pid), res.err):
            raise TestFail('dump %s: %s' % (res.what(), res.last_err()))
        if st.proc_state(p.pid) not in ('S', 'R'):
            raise TestFail('the root is %s after the refused dump' % st.proc_state(p.pid))
    finally:
        for pid in [p.pid] + ([stray] if stray else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()
        st.reap_zombie_children()


def t_freezer(ctx):
    # A tree in a cgroup of its own is frozen while it is seized.
    base = next((b for b in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup')
                 if os.path.exists(os.path.join(b, 'cgroup.procs'))), None)
    if not base:
        raise TestSkip('no cgroup v2 hierarchy')
    cg = os.path.join(base, 'stasis-test-%d' % os.getpid())
    os.mkdir(cg)
    try:
        tree = os.path.join(ctx.r.build, 'tests', 'zdtm', 'tree')
        w = ctx.workload('sh', ['-c', 'echo $$ > %s/cgroup.procs && exec %s' % (cg, tree)], binary='/bin/sh')
        dump_restore_cycle(ctx, w, '0')
        log = open(ctx.path('img-0-dump.log')).read()
        if 'frozen while the tree is seized' not in log:
            raise TestFail('the dump did not use the cgroup freezer: %s' % log[-300:])
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail(err)
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                st.reap_zombie_children()
                time.sleep(0.1)


def t_damaged(ctx, kind):
    w = ctx.workload('mem')
    pid = w.pid
    img = ctx.path('img')
    ctx.dump(pid, img)
    expect_killed(pid)
    dmg = ctx.path('dmg')
    shutil.copytree(img, dmg)
    files = sorted(os.listdir(dmg))
    data = [f for f in files if f != 'manifest.json' and not f.endswith('.json')]
    jsons = [f for f in files if f.endswith('.json') and f != 'manifest.json']
    manifest = os.path.join(dmg, 'manifest.json')
    if kind == 'truncated-pages':
        if not data:
            raise TestFail('image has no page data file: %s' % files)
        big = max(data, key=lambda f: os.path.getsize(os.path.join(dmg, f)))
        p = os.path.join(dmg, big)
        os.truncate(p, os.path.getsize(p) // 2)
    elif kind == 'missing-file':
        os.unlink(os.path.join(dmg, (data or jsons)[0]))
    elif kind == 'flipped-page-byte':
        # The page file is read by the restored process itself; the
        # restorer must still notice the damage before letting it run.
        if not data:
            raise TestFail('image has no page data file: %s' % files)
        p = os.path.join(dmg, max(data, key=lambda f: os.path.getsize(os.path.join(dmg, f))))
        b = bytearray(open(p, 'rb').read())
        b[len(b) // 3] ^= 0x10
        open(p, 'wb').write(bytes(b))
    elif kind == 'flipped-json-byte':
        if not jsons:
            raise TestFail('image has no record json: %s' % files)
        p = os.path.join(dmg, max(jsons, key=lambda f: os.path.getsize(os.path.join(dmg, f))))
        b = bytearray(open(p, 'rb').read())
        b[len(b) // 2] ^= 0x01
        open(p, 'wb').write(bytes(b))
    elif kind in ('foreign-format', 'future-version'):
        m = json.load(open(manifest))
        if kind == 'foreign-format':
            m['format'] = 'criu-image'
        else:
            m['version'] = 999
        json.dump(m, open(manifest, 'w'))
    elif kind == 'garbage-manifest':
        open(manifest, 'wb').write(bytes((i * 131 + 7) % 256 for i in range(4096)))
    elif kind == 'empty-dir':
        shutil.rmtree(dmg)
        os.mkdir(dmg)
    elif kind == 'nonexistent-dir':
        shutil.rmtree(dmg)
    res, _, _ = ctx.restore(dmg, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore of a damaged image')
    if not st.pid_gone(pid, 3):
        raise TestFail('a process with pid %d is left after the failed restore' % pid)
    # the intact image still restores
    restore_img_and_pass(ctx, img, pid, w)


def t_zombie(ctx):
    w = ctx.workload('mem')
    pid = w.pid
    img = ctx.path('img')
    ctx.dump(pid, img)
    time.sleep(0.05)
    if st.proc_state(pid) != 'Z':
        raise TestFail('dumped original is %s, expected a zombie' % st.proc_state(pid))
    r, wfd = os.pipe()
    ctx.fds.append(wfd)
    e = dict(os.environ)
    e.update(ctx.r.extra_env)
    p = subprocess.Popen([ctx.r.stasis, 'restore', '-D', img, '--detach'], stdin=r, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, cwd=ctx.dir)
    os.close(r)
    time.sleep(1.0)
    early = p.poll()
    st.wait_pid(pid, 5)  # reap the original now
    try:
        out, err = p.communicate(timeout=ctx.left(30))
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise TestFail('restore did not finish after the zombie was reaped')
    if early is not None:
        raise TestFail('restore exited %s while pid %d was still a zombie: %s'
                       % (early, pid, err.decode(errors='replace').strip().splitlines()[-1:]))
    if p.returncode != 0:
        raise TestFail('restore exit %d: %s' % (p.returncode, err.decode(errors='replace').strip()[-300:]))
    if out.decode().strip() != str(pid):
        raise TestFail('restore printed %r, expected %d' % (out.decode()[:100], pid))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail(err)


DAMAGE = ('truncated-pages', 'flipped-page-byte', 'missing-file', 'flipped-json-byte', 'foreign-format',
          'future-version', 'garbage-manifest', 'empty-dir', 'nonexistent-dir')


def tests(r):
    out = [Test('fail:unsupported_fd', t_unsupported_fd, 60)]
    for point in ('dump:after-seize', 'dump:after-memory'):
        for wl in ('mem', 'threads', 'restart', 'pty_session'):
            out.append(Test('fail:inject:%s:%s' % (point, wl), t_inject_dump, 60, point, wl))
    for point in ('restore:after-mm', 'restore:after-threads'):
        out.append(Test('fail:inject:%s' % point, t_inject_restore, 60, point))
    out += [
        Test('fail:leave-running', t_leave_running, 60),
        Test('fail:tcp-established', t_tcp_established, 60),
        Test('tcp-close', t_tcp_close, 60),
        Test('pidns', t_pidns, 60),
        Test('fail:ctty', t_ctty, 60),
        Test('fail:reparented', t_escapee, 60),
        Test('fail:foreign-pidfd', t_foreign_fd, 60, 'pidfd', 'pidfd'),
        Test('fail:foreign-ns', t_foreign_fd, 60, 'ns', 'uts'),
        Test('freezer', t_freezer, 60),
    ]
    out += [Test('fail:damaged:%s' % kind, t_damaged, 60, kind) for kind in DAMAGE]
    out.append(Test('zombie-pid', t_zombie, 60))
    if r.asan_stasis:
        out.append(Test('asan:fail:unsupported_fd', t_unsupported_fd, 60, r.asan_stasis))
    return out
