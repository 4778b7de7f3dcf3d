# SPDX-License-Identifier: LGPL-2.1-or-later
"""The test runner's machinery: a test (Test), what one test holds while it
runs (Ctx), and the Runner that runs the tests one by one with a timeout
each, reports `ok`, `FAIL` or `skip` per test and the closing count, and
cleans up: it is a child subreaper (restored processes become its
children), kills by pid and reaps everything it started, runs the hooks of
long-lived helpers (a test dockerd) at the end even on failure or Ctrl-C,
and removes its temporary directories.

Under CI=true a skipped test counts as failed (its skip reason is the
failure reason), so that a green CI run means every test ran.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import stasistest as st


class TestFail(Exception):
    pass


class TestSkip(Exception):
    pass


class TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise TestTimeout()


def _terminate(signum, frame):
    # SIGTERM ends the run like Ctrl-C: the finally blocks still clean up.
    raise KeyboardInterrupt()


class Test:
    """A test: its name, fn(ctx, *args) that raises TestFail or TestSkip,
    and its timeout in seconds. xfail='why' marks a known gap: its TestFail
    passes with a note (`xfail NAME`), and passing fails the test, so that
    the mark is removed once the gap is closed."""
    __slots__ = ('name', 'fn', 'timeout', 'args', 'xfail')

    def __init__(self, name, fn, timeout=60, *args, xfail=None):
        self.name, self.fn, self.timeout, self.args, self.xfail = name, fn, timeout, args, xfail


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
        if not binary and not os.access(b, os.X_OK):
            raise TestFail('workload %s is not built: run make build (it reconfigures when tests/zdtm/ '
                           'changed)' % b)
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

    def restore(self, img, env=None, expect_ok=True, extra=(), quiet=False, timeout=None, binary=None):
        """restore --detach with a fresh stdin pipe; returns (res, pid, stdin_w).
        quiet: at the default verbosity (no -v), as a user sees a failure.
        binary: another stasis (or a wrapper of it) than the run's."""
        r, w = os.pipe()
        self.fds.append(w)
        try:
            res = self.stasis(['restore', '-D', img, '--detach'] + ([] if quiet else ['-v']) +
                              ['--log-file', img.rstrip('/') + '-restore.log'] + list(extra),
                              env=env, stdin=r, timeout=timeout, binary=binary)
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
        st.kill_reap_all_children(exclude=self.r.long_lived_pids())
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        if not self.r.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Runner:
    def __init__(self, opts):
        self.opts = opts
        self.build = os.path.abspath(opts.build)
        self.stasis = os.path.join(self.build, 'stasis')
        self.asan_stasis = os.path.join(os.path.abspath(opts.asan_build), 'stasis') if opts.asan_build else None
        self.verbose = opts.verbose
        self.keep = opts.keep
        self.ci = os.environ.get('CI') == 'true'
        self.extra_env = {}
        self.tmproot = tempfile.mkdtemp(prefix='stasis-tests-')
        os.chmod(self.tmproot, 0o755)
        self.passed = self.failed = self.skipped = self.xfailed = 0
        self.k = re.compile(opts.k) if opts.k else None
        self._at_end = []
        self._long_lived = []

    def selected(self, name):
        return not self.k or self.k.search(name)

    def at_end(self, fn):
        """fn() runs once when the run ends, however it ends (latest first)."""
        self._at_end.append(fn)

    def keep_alive(self, fn):
        """fn() returns pids of helpers that outlive one test (a dockerd and
        its shims): the cleanup after each test leaves them running."""
        self._long_lived.append(fn)

    def long_lived_pids(self):
        return {p for fn in self._long_lived for p in fn()}

    def report(self, kind, name, reason=None):
        if kind == 'skip' and self.ci:
            kind, reason = 'fail', '%s (skipped, and a skip fails under CI=true)' % reason
        if kind == 'ok':
            self.passed += 1
            print('ok %s' % name)
        elif kind == 'xfail':
            self.passed += 1
            self.xfailed += 1
            print('xfail %s: %s' % (name, reason))
        elif kind == 'skip':
            self.skipped += 1
            print('skip %s: %s' % (name, reason))
        else:
            self.failed += 1
            print('FAIL %s: %s' % (name, reason))
        sys.stdout.flush()

    def run_test(self, t):
        if not self.selected(t.name):
            return
        ctx = Ctx(self, t.name, t.timeout)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, t.timeout + 5)
        try:
            t.fn(ctx, *t.args)
            signal.setitimer(signal.ITIMER_REAL, 0)
            if t.xfail:
                self.report('fail', t.name, 'passed, but is marked as expected to fail (%s): remove the mark'
                            % t.xfail)
            else:
                self.report('ok', t.name)
        except TestFail as e:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if t.xfail:
                self.report('xfail', t.name, 'failed as expected (%s): %s' % (t.xfail, e))
            else:
                self.report('fail', t.name, str(e))
        except TestSkip as e:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('skip', t.name, str(e))
        except TestTimeout:
            self.report('fail', t.name, 'timed out after %d s' % t.timeout)
        except Exception as e:  # a runner bug must not stop the run
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.report('fail', t.name, 'runner error: %s: %s' % (type(e).__name__, e))
            if self.verbose:
                import traceback
                traceback.print_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            if self.verbose:
                self.print_logs(ctx)
            ctx.cleanup()

    def print_logs(self, ctx):
        if not os.path.isdir(ctx.dir):
            return
        for f in sorted(os.listdir(ctx.dir)):
            if f.endswith('.log'):
                with open(ctx.path(f), errors='replace') as fh:
                    tail = fh.read().splitlines()[-8:]
                print('  # %s:\n%s' % (f, '\n'.join('  #   ' + l for l in tail)))

    # --- unit tests (meson test) ------------------------------------------
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
                self.report_unit(t, logf)
        if n == 0:
            self.report('fail', 'unit', 'meson test ran nothing: %s' % res.what())

    def report_unit(self, t, logf):
        name = 'unit:%s' % t.get('name', '?').split(' / ')[-1]
        if not self.selected(name):
            return
        r = t.get('result', '')
        if r in ('OK', 'EXPECTEDFAIL'):
            self.report('ok', name)
        elif r == 'SKIP':
            self.report('skip', name, 'skipped by the test')
        else:
            self.report('fail', name, '%s (see %s)' % (r, logf))

    # --- the whole run ----------------------------------------------------
    def run_all(self, tests, unit=True):
        """Runs the unit tests, then `tests` (a list of Test); prints the
        closing line; returns the exit status."""
        st.make_subreaper()
        old_term = signal.signal(signal.SIGTERM, _terminate)
        self.extra_env = {'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=0:exitcode=99',
                          'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1:exitcode=98'}
        interrupted = False
        try:
            if unit:
                self.run_unit()
            for t in tests:
                self.run_test(t)
        except KeyboardInterrupt:
            interrupted = True
            print('# interrupted (Ctrl-C or SIGTERM); cleaning up')
        finally:
            self.end()
            signal.signal(signal.SIGTERM, old_term)
        line = '%d passed, %d failed' % (self.passed, self.failed)
        if self.xfailed:
            line = '%d passed (%d of them expected failures), %d failed' % (self.passed, self.xfailed,
                                                                           self.failed)
        if self.skipped:
            line += ', %d skipped' % self.skipped
        print(line)
        return 130 if interrupted else 1 if self.failed else 0

    def end(self):
        while self._at_end:
            fn = self._at_end.pop()
            try:
                fn()
            except Exception as e:  # the other hooks and the cleanup still run
                print('# cleanup %s: %s: %s' % (getattr(fn, '__qualname__', fn), type(e).__name__, e))
        self._long_lived = []
        st.kill_reap_all_children()
        if not self.keep:
            shutil.rmtree(self.tmproot, ignore_errors=True)
