# SPDX-License-Identifier: LGPL-2.1-or-later
"""stasis check --pid / --type docker --id: what a dump would refuse or
lose, one line each (pid, fd, kind), in the dump's own words; exit 0 when
a dump would be exact. Nothing is frozen or traced meanwhile: a counting
process keeps counting. Each finding is checked against what the dump
then really says (the same rules, not a second list)."""
import os
import re
import signal
import subprocess
import sys
import time

import dockerd
import stasistest as st
from runner import Test, TestFail
from t_terminals import LOOP, Tmux

SUMMARY = re.compile(r'^\d+ process(es)?, \d+ fds looked at, nothing frozen: (.*)$')


def check(ctx, args, want_rc, env=None, run=None):
    res = run(*args) if run else ctx.stasis(['check'] + list(args), env=env)
    out = res.stdout if hasattr(res, 'stdout') else res.out
    rc = res.returncode if hasattr(res, 'returncode') else res.rc
    lines = out.strip().splitlines()
    if rc != want_rc or not lines or not SUMMARY.match(lines[-1]):
        raise TestFail('check %s: exit %s, expected %d with a summary line: %r %r'
                       % (' '.join(args), rc, want_rc, out[-400:], (res.stderr if hasattr(res, 'stderr') else res.err)[-300:]))
    found = [x for x in lines[:-1] if x.startswith(('refused: ', 'lost: '))]
    if len(found) != len(lines) - 1:
        raise TestFail('check printed lines that are no findings: %r' % lines[:-1])
    return found


def untouched(pid, what):
    """Not stopped, not traced: the check left it alone."""
    state = st.proc_state(pid)
    with open('/proc/%d/status' % pid) as f:
        tracer = re.search(r'^TracerPid:\s*(\d+)', f.read(), re.M).group(1)
    if state in ('T', 't') or tracer != '0':
        raise TestFail('%s: pid %d is %s, traced by %s after the check' % (what, pid, state, tracer))


def t_check_plain(ctx):
    counter = ctx.path('count')
    code = ('import os, time\ni = 0\nwhile True:\n    i += 1\n    open(%r, "w").write(str(i))\n'
            '    os.replace(%r, %r)\n    time.sleep(0.002)\n' % (counter + '.new', counter + '.new', counter))
    p = subprocess.Popen([sys.executable, '-c', code], cwd=ctx.dir, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=())
    try:
        while not os.path.exists(counter) or not open(counter).read():
            time.sleep(0.01)
        start = int(open(counter).read() or 0)
        seen, samples = set(), []
        c = subprocess.Popen([ctx.r.stasis, 'check', '--pid', str(p.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ctx.dir)
        while c.poll() is None:
            seen.add(st.proc_state(p.pid))
            samples.append(open(counter).read())
            time.sleep(0.001)
        out, err = c.communicate()
        found = check(ctx, [], 0, run=lambda: subprocess.CompletedProcess(c.args, c.returncode, out, err))
        if found or 'a dump would be exact' not in out:
            raise TestFail('check of a plain python3 loop: %r' % out)
        end = int(open(counter).read() or 0)
        if end <= start or seen & {'T', 't'}:
            raise TestFail('the process did not count on during the check (%d -> %d, states %s)'
                           % (start, end, sorted(x for x in seen if x)))
        untouched(p.pid, 'plain')
    finally:
        p.kill()
        p.wait()


def same_as_dump(ctx, w, found, words):
    """The finding names pid, fd and kind, and the dump refuses with it."""
    line = [x for x in found if x.startswith('refused: ') and all(w_ in x for w_ in words)]
    if not line:
        raise TestFail('no "refused:" line naming %s: %r' % (words, found))
    untouched(w.pid, 'check')
    res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', ctx.path('img')])
    if res.rc != 1 or line[0][len('refused: '):] not in res.err:
        raise TestFail('the dump says %r, the check said %r' % (res.err.strip()[-300:], line[0]))
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('after the check and the refused dump: %s' % err)


def t_check_foreign_pidfd(ctx):
    w = ctx.workload('foreign_fds', args=('pidfd',))
    fd = max(st.snapshot(w.pid)['fds'])
    found = check(ctx, ['--pid', str(w.pid)], 1)
    same_as_dump(ctx, w, found, ('pid %d' % w.pid, 'fd %d' % fd, 'pidfd'))


def t_check_pidfd(ctx):
    """pidfds of the tree itself (a child, itself, a zombie): a dump keeps
    them, and the check says so."""
    w = ctx.workload('pidfd')
    found = check(ctx, ['--pid', str(w.pid)], 0)
    if found:
        raise TestFail('pidfds of the tree reported: %r' % found)
    untouched(w.pid, 'pidfd')
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('after the check: %s' % err)


def t_check_tcp(ctx):
    w = ctx.workload('tcp_conn')
    found = check(ctx, ['--pid', str(w.pid)], 1)
    same_as_dump(ctx, w, found, ('pid %d' % w.pid, 'TCP connection', '--tcp-close'))


def t_check_tmux(ctx):
    tm = Tmux(ctx)
    try:
        tm.run('new-session', '-d', '-x', '80', '-y', '24', '-s', 't', LOOP)
        tm.run('new-window', '-d', '-t', 't:1', 'sh')
        server = int(tm.run('display-message', '-p', '#{pid}').strip())
        tm.pids = set(st.tree_info(server))
        before = tm.wait_counter(2)
        # The dump keeps a tmux server with its panes today: exact.
        found = check(ctx, ['--pid', str(server)], 0)
        if found:
            raise TestFail('tmux: %r' % found)
        untouched(server, 'tmux')
        tm.wait_counter(before + 3)
    finally:
        tm.stop()


def t_check_docker(ctx):
    d = dockerd.shared(ctx)
    name = 'stasis-check-%d' % os.getpid()
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c',
                 'i=0; while :; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done')
        pid = int(d.docker('inspect', '-f', '{{.State.Pid}}', name).stdout.strip())
        before = int(d.docker('exec', name, 'sh', '-c', 'while [ ! -s /data/count ]; do sleep 0.1; done; '
                              'cat /data/count').stdout.strip())

        def run(*args):
            return subprocess.run([ctx.r.stasis, 'check'] + list(args), env=d.env, capture_output=True,
                                  text=True, timeout=60)
        found = check(ctx, ['--type', 'docker', '--id', name], 0, run=run)
        if found:
            raise TestFail('a plain busybox loop: %r' % found)
        untouched(pid, 'docker')
        time.sleep(0.5)
        # The loop truncates the file before it writes it: read again
        # when a read comes between the two (which failed this test once).
        after = b''
        for _ in range(20):
            after = d.docker('exec', name, 'cat', '/data/count').stdout.strip()
            if after:
                break
            time.sleep(0.05)
        after = int(after)
        if after <= before:
            raise TestFail('the container stopped counting (%d -> %d)' % (before, after))
        r = run('--type', 'docker', '--id', 'stasis-nope-%d' % os.getpid())
        if r.returncode != 1 or 'stasis-nope' not in r.stderr:
            raise TestFail('check of an unknown container: exit %d %r' % (r.returncode, r.stderr))
    finally:
        d.docker('rm', '-f', name, check=False)


TESTS = [
    Test('check:plain', t_check_plain, 60),
    Test('check:pidfd', t_check_pidfd, 60),
    Test('check:foreign-pidfd', t_check_foreign_pidfd, 60),
    Test('check:tcp', t_check_tcp, 60),
    Test('check:tmux', t_check_tmux, 60),
    Test('docker:check', t_check_docker, 120),
]
