#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""stasis test runner: unit tests, ZDTM-style workloads through dump and
restore, CLI tests and failure paths.

    python3 tests/run.py --build build [--asan-build build-asan] [-k PATTERN] [-v]

Prints `ok NAME`, `FAIL NAME: reason` or `skip NAME: reason` per test, then
`N passed, N failed[, N skipped]`; exits 1 when a test failed. It makes
itself a child subreaper (restored processes become its children), kills by
pid and reaps everything it started, and removes its temporary directories.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import stasistest as st  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import programs  # noqa: E402
import containers  # noqa: E402
import t_containers_pids  # noqa: E402
import t_manpage  # noqa: E402


class TestFail(Exception):
    pass


class TestSkip(Exception):
    pass


class TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise TestTimeout()


PY_COUNTER = r'''
import os, signal, sys, time
go = False
def usr1(sig, frame):
    global go
    go = True
signal.signal(signal.SIGUSR1, usr1)
f = open('counter.txt', 'a')
i = 0
while not go:
    f.write('%d %d\n' % (i, os.getpid()))
    f.flush()
    if i == 5:
        print('READY', flush=True)
    i += 1
    time.sleep(0.05)
print('PASS', flush=True)
'''


class Ctx:
    """One test: a temp dir (workdir = the workload's cwd), the processes it
    started, a deadline."""

    def __init__(self, runner, name, timeout):
        self.r = runner
        self.name = name
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix='stasis-%s-' % re.sub(r'[^A-Za-z0-9_.-]', '_', name),
                                    dir=runner.tmproot)
        os.chmod(self.dir, 0o755)  # workloads may drop to non-root uids
        self.workdir = self.path('work')
        os.mkdir(self.workdir, 0o755)
        self.workloads = []
        self.fds = []
        self.deadline = time.monotonic() + timeout

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def left(self, cap=None):
        t = max(1.0, self.deadline - time.monotonic())
        return min(t, cap) if cap else t

    def workload(self, name, args=(), start=True, ready=True, binary=None, env=None):
        b = binary or os.path.join(self.r.build, 'tests', 'zdtm', name)
        w = st.Workload(b, args, self.workdir, self.path('%s.log' % os.path.basename(b)), env=env)
        self.workloads.append(w)
        if start:
            try:
                w.start()
            except FileNotFoundError as e:
                raise TestFail(str(e))
            if ready:
                try:
                    w.wait_ready(self.left(30))
                except RuntimeError as e:
                    raise TestFail(str(e))
        return w

    # --- stasis ---------------------------------------------------------
    def stasis(self, args, timeout=None, env=None, stdin=subprocess.DEVNULL, binary=None):
        b = binary or self.r.stasis
        if not os.access(b, os.X_OK):
            raise TestFail('stasis binary not found: %s' % b)
        e = dict(os.environ)
        e.update(self.r.extra_env)
        if env:
            e.update(env)
        res = st.run_cmd([b] + args, timeout=timeout or self.left(60), env=e, stdin=stdin, cwd=self.dir)
        if self.r.verbose:
            print('  # %s -> rc %s (%.2f s)' % (' '.join(res.args), res.rc, res.elapsed))
        rep = res.sanitizer_report()
        if rep:
            raise TestFail('stasis %s: sanitizer/crash report: %s' % (args[0], rep))
        if res.rc is not None and res.rc < 0 and not res.timed_out:
            raise TestFail('stasis %s %s' % (args[0], res.what()))
        return res

    def dump(self, pid, img, extra=(), env=None, expect_ok=True):
        res = self.stasis(['dump', '--type', 'process', '--pid', str(pid), '-D', img, '-v',
                           '--log-file', img.rstrip('/') + '-dump.log'] + list(extra), env=env)
        if expect_ok and res.rc != 0:
            raise TestFail('dump %s' % res.what())
        return res

    def restore(self, img, env=None, expect_ok=True, extra=()):
        """restore --detach with a fresh stdin pipe; returns (res, pid, stdin_w)."""
        r, w = os.pipe()
        self.fds.append(w)
        try:
            res = self.stasis(['restore', '-D', img, '--detach', '-v', '--log-file',
                               img.rstrip('/') + '-restore.log'] + list(extra), env=env, stdin=r)
        finally:
            os.close(r)
        pid = None
        if res.rc == 0:
            m = re.search(r'^\s*(\d+)\s*$', res.out, re.M)
            if not m:
                raise TestFail('restore printed no pid on stdout: %r' % res.out[:200])
            pid = int(m.group(1))
        elif expect_ok:
            raise TestFail('restore %s' % res.what())
        return res, pid, w

    def cleanup(self):
        for w in self.workloads:
            if w.pid:
                st.kill_reap(w.pid)
            w.close()
        st.kill_reap_all_children()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        if not self.r.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


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
    diffs = st.compare_snapshots(before, st.snapshot(pid))
    if diffs:
        raise TestFail('process changed by %s: %s' % (what, '; '.join(diffs)))


def dump_restore_cycle(ctx, w, tag, binary=None, dump_extra=(), running=False):
    """Snapshot, dump (kills), reap, restore --detach, compare. Returns the
    new stdin write end."""
    pid = w.pid
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
        res = ctx.stasis(['restore', '-D', img, '--detach', '-v', '--log-file', img + '-restore.log'],
                         binary=binary, stdin=r)
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
    # The restored threads may not have re-entered their interrupted syscalls
    # yet (sigsuspend's temporary mask shows in SigBlk only then): let the
    # state settle for up to 1 s before calling a difference real.
    end = time.monotonic() + 1.0
    while True:
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
        if not diffs or time.monotonic() > end:
            break
        time.sleep(0.05)
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


class Runner:
    def __init__(self, opts):
        self.opts = opts
        self.build = os.path.abspath(opts.build)
        self.stasis = os.path.join(self.build, 'stasis')
        self.verbose = opts.verbose
        self.keep = opts.keep
        self.extra_env = {}
        self.tmproot = tempfile.mkdtemp(prefix='stasis-tests-')
        os.chmod(self.tmproot, 0o755)
        self.passed = self.failed = self.skipped = 0
        self.k = re.compile(opts.k) if opts.k else None

    def selected(self, name):
        return not self.k or self.k.search(name)

    def report(self, kind, name, reason=None):
        if kind == 'ok':
            self.passed += 1
            print('ok %s' % name)
        elif kind == 'skip':
            self.skipped += 1
            print('skip %s: %s' % (name, reason))
        else:
            self.failed += 1
            print('FAIL %s: %s' % (name, reason))
        sys.stdout.flush()

    def run_test(self, name, fn, timeout=60, *args):
        if not self.selected(name):
            return
        ctx = Ctx(self, name, timeout)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout + 5)
        try:
            fn(ctx, *args)
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('ok', name)
        except TestFail as e:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('fail', name, str(e))
        except TestSkip as e:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('skip', name, str(e))
        except TestTimeout:
            self.report('fail', name, 'timed out after %d s' % timeout)
        except Exception as e:  # a runner bug must not stop the run
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('fail', name, 'runner error: %s: %s' % (type(e).__name__, e))
            if self.verbose:
                import traceback
                traceback.print_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            if self.verbose and os.path.isdir(ctx.dir):
                for f in sorted(os.listdir(ctx.dir)):
                    if f.endswith('.log'):
                        with open(ctx.path(f), errors='replace') as fh:
                            tail = fh.read().splitlines()[-8:]
                        print('  # %s:\n%s' % (f, '\n'.join('  #   ' + l for l in tail)))
            ctx.cleanup()

    # --- unit tests -----------------------------------------------------
    def run_unit(self):
        if not self.selected('unit:'):
            return
        res = st.run_cmd(['meson', 'test', '-C', self.build, '--suite', 'unit', '--logbase', 'unitlog',
                          '--print-errorlogs'], timeout=600)
        logf = os.path.join(self.build, 'meson-logs', 'unitlog.json')
        if res.rc != 0 and ('No tests defined' in res.out + res.err or 'No suitable tests' in res.out + res.err):
            self.report('skip', 'unit', 'no unit tests in %s' % self.build)
            return
        if not os.path.exists(logf) or os.path.getmtime(logf) < time.time() - res.elapsed - 5:
            tail = [l for l in (res.err + res.out).splitlines() if l.strip()][-1:]
            self.report('fail', 'unit', 'meson test exit %s: %s' % (res.rc, tail[0] if tail else '(no output)'))
            return
        n = 0
        with open(logf) as f:
            for line in f:
                try:
                    t = json.loads(line)
                except ValueError:
                    continue
                n += 1
                name = 'unit:%s' % t.get('name', '?').split(' / ')[-1]
                if not self.selected(name):
                    continue
                r = t.get('result', '')
                if r in ('OK', 'EXPECTEDFAIL'):
                    self.report('ok', name)
                elif r == 'SKIP':
                    self.report('skip', name, 'skipped by the test')
                else:
                    self.report('fail', name, '%s (see %s)' % (r, logf))
        if n == 0:
            self.report('fail', 'unit', 'meson test ran nothing: %s' % res.what())

    # --- tests ----------------------------------------------------------
    def all_tests(self):
        zd = self.opts.no_dump
        w = [('mem', (), None, 60), ('threads', (), None, 60), ('restart', (), 'wake up\n', 60),
             ('signals', (), None, 60), ('creds', (), None, 60), ('files', (), None, 60), ('anonfds', (), None, 60), ('pipes', (), None, 60),
             ('tree', (), None, 60), ('shm', (), None, 60), ('sysvipc', (), None, 60), ('sockets', (), None, 60), ('fifo', (), None, 60),
             ('posix_timers', (), None, 60), ('file_locks', (), None, 60), ('inotify', (), None, 60),
             ('bigmem', ('64',), None, 60)]
        tests = []
        for name, args, line, to in w:
            tests.append(('zdtm:%s' % name, self.t_zdtm, to, name, args, line, 0 if zd else 1, None))
        if zd:
            tests.append(('zdtm:unsupported_fd', self.t_zdtm, 60, 'unsupported_fd', (), None, 0, None))
            return tests
        tests.append(('zdtm:mem:2-iterations', self.t_zdtm, 60, 'mem', (), None, 2, None))
        tests.append(('zdtm:threads:2-iterations', self.t_zdtm, 60, 'threads', (), None, 2, None))
        tests.append(('zdtm:sysvipc:hostns', self.t_zdtm, 60, 'sysvipc', ('hostns',), None, 1, None))
        tests.append(('zdtm:sysvipc:2-iterations', self.t_zdtm, 60, 'sysvipc', (), None, 2, None))
        tests += [
            ('cli:usage', self.t_cli_usage, 30),
            ('cli:check', self.t_cli_check, 30),
            ('cli:inspect', self.t_cli_inspect, 60),
            ('fail:unsupported_fd', self.t_unsupported_fd, 60),
        ]
        tests += [(name, program_test, to, fn) for name, fn, to in t_manpage.TESTS]
        for point in ('dump:after-seize', 'dump:after-memory'):
            for wl in ('mem', 'threads', 'restart'):
                tests.append(('fail:inject:%s:%s' % (point, wl), self.t_inject_dump, 60, point, wl))
        for point in ('restore:after-mm', 'restore:after-threads'):
            tests.append(('fail:inject:%s' % point, self.t_inject_restore, 60, point))
        tests.append(('fail:leave-running', self.t_leave_running, 60))
        tests.append(('fail:tcp-established', self.t_tcp_established, 60))
        tests.append(('tcp-close', self.t_tcp_close, 60))
        tests.append(('pidns', self.t_pidns, 60))
        tests.append(('fail:ctty', self.t_ctty, 60))
        tests.append(('fail:reparented', self.t_escapee, 60))
        tests.append(('freezer', self.t_freezer, 60))
        for kind in ('truncated-pages', 'flipped-page-byte', 'missing-file', 'flipped-json-byte', 'foreign-format', 'future-version',
                     'garbage-manifest', 'empty-dir', 'nonexistent-dir'):
            tests.append(('fail:damaged:%s' % kind, self.t_damaged, 60, kind))
        tests.append(('zombie-pid', self.t_zombie, 60))
        tests.append(('bigmem-1g', self.t_zdtm, 180, 'bigmem', ('1024',), None, 1, None))
        tests.append(('python3', self.t_python, 60))
        tests.append(('inherit-fd', self.t_inherit_fd, 60))
        for name, fn, to in programs.TESTS:
            tests.append((name, program_test, to, fn))
        for name, fn, to in containers.TESTS:
            tests.append((name, container_test, to, fn))
        tests += [(name, container_test, to, fn) for name, fn, to in t_containers_pids.TESTS]
        if self.opts.asan_build:
            asan = os.path.join(os.path.abspath(self.opts.asan_build), 'stasis')
            for name, args, line, to in w:
                tests.append(('asan:zdtm:%s' % name, self.t_zdtm, to * 2, name, args, line, 1, asan))
            tests.append(('asan:fail:unsupported_fd', self.t_unsupported_fd, 60, asan))
        return tests

    def run_all(self):
        st.make_subreaper()
        self.extra_env = {'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=0:exitcode=99',
                          'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1:exitcode=98'}
        try:
            if not self.opts.no_dump:
                self.run_unit()
            for t in self.all_tests():
                name, fn, timeout = t[0], t[1], t[2]
                self.run_test(name, fn, timeout, *t[3:])
        finally:
            st.kill_reap_all_children()
            if not self.keep:
                shutil.rmtree(self.tmproot, ignore_errors=True)
        line = '%d passed, %d failed' % (self.passed, self.failed)
        if self.skipped:
            line += ', %d skipped' % self.skipped
        print(line)
        return 1 if self.failed else 0

    # zdtm: dump+restore `iters` times (0: just signal), then check PASS.
    def t_zdtm(self, ctx, name, args, stdin_line, iters, binary):
        w = ctx.workload(name, args)
        for i in range(iters):
            dump_restore_cycle(ctx, w, str(i), binary=binary)
        err = w.finish(ctx.left(60), stdin_line)
        if err:
            raise TestFail(err)

    def t_cli_usage(self, ctx):
        d = ctx.path('img')
        bad = [[], ['no-such-command'], ['dump'], ['dump', '--type', 'process', '-D', d],
               ['dump', '--type', 'process', '--pid', 'abc', '-D', d],
               ['dump', '--type', 'banana', '--pid', '1', '-D', d],
               ['dump', '--type', 'process', '--pid', '1', '-D', d, '--no-such-option'],
               ['dump', '--type', 'process', '--pid', '-5', '-D', d],
               ['restore'], ['restore', '-D'], ['restore', '-D', d, '--inherit-fd', 'x:y'], ['inspect'],
               ['check', 'extra-arg']]
        for args in bad:
            res = ctx.stasis(args, timeout=10)
            if res.rc != 2:
                raise TestFail('`stasis %s` %s, expected exit 2' % (' '.join(args), res.what()))
            if not res.err.strip():
                raise TestFail('`stasis %s` printed nothing on stderr' % ' '.join(args))
        if os.path.exists(d):
            raise TestFail('a usage error created %s' % d)

    def t_cli_check(self, ctx):
        res = ctx.stasis(['check'], timeout=20)
        if res.rc != 0:
            raise TestFail('check %s; stdout: %s' % (res.what(), ' | '.join(res.out.splitlines()[-3:])))
        if not res.out.strip():
            raise TestFail('check printed nothing')

    def t_cli_inspect(self, ctx):
        w = ctx.workload('mem')
        img = ctx.path('img')
        ctx.dump(w.pid, img, ['--leave-running'])
        res = ctx.stasis(['inspect', img], timeout=20)
        if res.rc != 0:
            raise TestFail('inspect %s' % res.what())
        if not re.search(r'\b%d\b' % w.pid, res.out):
            raise TestFail('inspect output does not name pid %d' % w.pid)
        for word in ('private.dat', 'shared.dat'):
            if word not in res.out:
                raise TestFail('inspect output lacks the mapping of %s' % word)
        res = ctx.stasis(['inspect', img, '--json'], timeout=20)
        if res.rc != 0:
            raise TestFail('inspect --json %s' % res.what())
        try:
            j = json.loads(res.out)
        except ValueError as e:
            raise TestFail('inspect --json is not valid JSON: %s' % e)

        def has_pid(o):
            if isinstance(o, dict):
                return any(has_pid(v) for v in o.values())
            if isinstance(o, list):
                return any(has_pid(v) for v in o)
            return o == w.pid and not isinstance(o, bool)
        if not has_pid(j):
            raise TestFail('inspect --json does not contain pid %d' % w.pid)
        res = ctx.stasis(['inspect', ctx.path('nothing-here')], timeout=20)
        if res.rc != 1:
            raise TestFail('inspect of a missing image %s, expected exit 1' % res.what())
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail('after --leave-running dump: %s' % err)

    def t_unsupported_fd(self, ctx, binary=None):
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

    def t_tcp_established(self, ctx):
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

    def t_escapee(self, ctx):
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

    def t_ctty(self, ctx):
        # A session leader with a controlling terminal (a shell under
        # `script`) is refused, naming the pid; it keeps running.
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
            if res.rc != 1 or not re.search(r'pid %d leads a session with a controlling terminal' % leader, res.err):
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

    def t_pidns(self, ctx):
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
        start = len(w.log())
        os.kill(outer, signal.SIGUSR1)
        if not st.pid_gone(outer, 20):
            raise TestFail('the restored tree did not finish')
        if 'PASS' not in w.log()[start:]:
            raise TestFail('the restored tree did not pass: %r' % w.log()[start:][-300:])
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail('the original, after the --pidns restore: %s' % err)

    def t_freezer(self, ctx):
        # A tree in a cgroup of its own is frozen while it is seized.
        base = next((b for b in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup')
                     if os.path.exists(os.path.join(b, 'cgroup.procs'))), None)
        if not base:
            raise TestSkip('no cgroup v2 hierarchy')
        cg = os.path.join(base, 'stasis-test-%d' % os.getpid())
        os.mkdir(cg)
        try:
            tree = os.path.join(self.build, 'tests', 'zdtm', 'tree')
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

    def t_tcp_close(self, ctx):
        w = ctx.workload('tcp_conn', ['closed'])
        dump_restore_cycle(ctx, w, '0', dump_extra=['--tcp-close'])
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail(err)

    def t_inject_dump(self, ctx, point, wl):
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

    def t_inject_restore(self, ctx, point):
        w = ctx.workload('threads')
        pid = w.pid
        img = ctx.path('img')
        ctx.dump(pid, img)
        expect_killed(pid)
        res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': point}, expect_ok=False)
        if res.rc != 1:
            raise TestFail('restore with %s injected %s, expected exit 1' % (point, res.what()))
        if str(pid) not in res.err and self.verbose:
            print('  # note: restore error does not name the pid: %s' % res.last_err())
        if not st.pid_gone(pid, 3):
            raise TestFail('a process with pid %d (state %s) is left after the failed restore'
                           % (pid, st.proc_state(pid)))
        # the image must be untouched: a second restore works
        ctx.fds.append(w.stdin_w)
        w.stdin_w = None
        _, pid2, wfd = ctx.restore(img)
        if pid2 != pid:
            raise TestFail('second restore gave pid %s, expected %d' % (pid2, pid))
        w.set_stdin(wfd)
        ctx.fds.remove(wfd)
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail('restore after the failed one: %s' % err)

    def t_leave_running(self, ctx):
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

    def t_damaged(self, ctx, kind):
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
        res, _, _ = ctx.restore(dmg, expect_ok=False)
        if res.timed_out:
            raise TestFail('restore of a damaged image timed out')
        if res.rc != 1:
            raise TestFail('restore of a damaged image %s, expected exit 1' % res.what())
        if not st.pid_gone(pid, 3):
            raise TestFail('a process with pid %d is left after the failed restore' % pid)
        # the intact image still restores
        restore_img_and_pass(ctx, img, pid, w)

    def t_zombie(self, ctx):
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
        e.update(self.extra_env)
        p = subprocess.Popen([self.stasis, 'restore', '-D', img, '--detach'], stdin=r, stdout=subprocess.PIPE,
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

    def t_python(self, ctx):
        w = ctx.workload('python3', ['-c', PY_COUNTER], binary=shutil.which('python3') or '/usr/bin/python3')
        time.sleep(0.3)
        dump_restore_cycle(ctx, w, '0', running=True)
        time.sleep(0.5)
        err = w.finish(ctx.left(30))
        if err:
            raise TestFail(err)
        lines = open(os.path.join(ctx.workdir, 'counter.txt')).read().split('\n')
        if lines[-1] != '':
            raise TestFail('counter file ends in a partial line: %r' % lines[-1])
        nums = []
        for l in lines[:-1]:
            n, p = l.split()
            if int(p) != w.pid:
                raise TestFail('counter line %r written by another pid' % l)
            nums.append(int(n))
        if nums != list(range(len(nums))):
            bad = next(i for i, n in enumerate(nums) if n != i)
            raise TestFail('counter sequence broken at line %d: %s' % (bad, nums[max(0, bad - 2):bad + 3]))
        if len(nums) < 15:
            raise TestFail('counter did not continue after restore (%d lines)' % len(nums))


PY_ECHO = r'''
import os, sys
os.closerange(3, 65536)
for line in sys.stdin:
    print('got:', line.strip(), flush=True)
'''


def t_inherit_fd(self, ctx):
    # A python3 blocked reading a pipe on fd 0 is dumped; the restore gives
    # it a file instead (--inherit-fd 0:5), and without --detach waits for
    # it and passes on its exit status.
    py = shutil.which('python3') or '/usr/bin/python3'
    r, w = os.pipe()
    out = open(ctx.path('echo.out'), 'ab')
    p = subprocess.Popen([py, '-c', PY_ECHO], stdin=r, stdout=out, stderr=out, close_fds=True,
                         start_new_session=True, cwd=ctx.workdir)
    os.close(r)
    try:
        os.write(w, b'before\n')
        time.sleep(0.5)
        img = ctx.path('img')
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(p.pid), '-D', img])
        if res.rc != 0:
            raise TestFail('dump exit %s: %s' % (res.rc, res.stderr.strip()))
        p.wait(10)
    finally:
        os.close(w)
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(ctx.path('input'), 'w') as f:
        f.write('after\n')
    with open(ctx.path('input')) as f:
        rc = subprocess.run([self.stasis, 'restore', '-D', img, '--inherit-fd', '0:5'], stdin=subprocess.DEVNULL,
                            pass_fds=(5,), timeout=ctx.left(30),
                            preexec_fn=lambda: os.dup2(f.fileno(), 5) if f.fileno() != 5 else None,
                            capture_output=True).returncode
    text = open(ctx.path('echo.out')).read()
    if rc != 0 or text != 'got: before\ngot: after\n':
        raise TestFail('restore exit %s, output %r' % (rc, text))


Runner.t_inherit_fd = t_inherit_fd


def program_test(ctx, fn):
    try:
        fn(ctx)
    except programs.ProgramFail as e:
        raise TestFail(str(e))


def container_test(ctx, fn):
    try:
        fn(ctx)
    except containers.ContainerFail as e:
        raise TestFail(str(e))
    except containers.ContainerSkip as e:
        raise TestSkip(str(e))


def restore_img_and_pass(ctx, img, pid, w):
    if not st.pid_gone(pid, 3):
        raise TestFail('pid %d is not free for the final restore' % pid)
    _, pid2, wfd = ctx.restore(img)
    if pid2 != pid:
        raise TestFail('restore gave pid %s, expected %d' % (pid2, pid))
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('restore of the intact image: %s' % err)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build', help='meson build dir with stasis and the workloads')
    ap.add_argument('--asan-build', help='also run the workloads with the stasis of this ASan/UBSan build')
    ap.add_argument('-k', metavar='PATTERN', help='run only tests whose name matches this regex')
    ap.add_argument('-v', '--verbose', action='store_true', help='show commands and log tails')
    ap.add_argument('--no-dump', action='store_true', help='only validate the workloads (SIGUSR1, no dump)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directories')
    opts = ap.parse_args()
    if not os.path.isdir(opts.build):
        print('run.py: no build directory %s' % opts.build, file=sys.stderr)
        return 2
    return Runner(opts).run_all()


if __name__ == '__main__':
    sys.exit(main())
