# SPDX-License-Identifier: LGPL-2.1-or-later
"""The command line as a user meets it: usage errors, `check`, `inspect`,
`restore --inherit-fd`, and a python3 interpreter dumped and restored while
it writes."""
import json
import os
import re
import shutil
import subprocess
import time

from runner import Test, TestFail
from checks import dump_restore_cycle

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


PY_ECHO = r'''
import os, sys
os.closerange(3, 65536)
for line in sys.stdin:
    print('got:', line.strip(), flush=True)
'''


def t_cli_usage(ctx):
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


def t_cli_check(ctx):
    res = ctx.stasis(['check'], timeout=20)
    if res.rc != 0:
        raise TestFail('check %s; stdout: %s' % (res.what(), ' | '.join(res.out.splitlines()[-3:])))
    if not res.out.strip():
        raise TestFail('check printed nothing')


def t_cli_inspect(ctx):
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


def t_python(ctx):
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


def t_inherit_fd(ctx):
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
        rc = subprocess.run([ctx.r.stasis, 'restore', '-D', img, '--inherit-fd', '0:5'], stdin=subprocess.DEVNULL,
                            pass_fds=(5,), timeout=ctx.left(30),
                            preexec_fn=lambda: os.dup2(f.fileno(), 5) if f.fileno() != 5 else None,
                            capture_output=True).returncode
    text = open(ctx.path('echo.out')).read()
    if rc != 0 or text != 'got: before\ngot: after\n':
        raise TestFail('restore exit %s, output %r' % (rc, text))


def t_default_dir(ctx):
    # dump without -D: a new directory under the checkpoint root (made 0700
    # with its parents), printed as the one line on stdout; restore --type
    # checks the image's type, naming both; --keep-ip is refused for it.
    p = subprocess.Popen(['sleep', '1000'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    root = ctx.path('ckpt', 'root')
    env = {'STASIS_CHECKPOINT_ROOT': root}
    try:
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(p.pid)], env=env)
        if res.rc != 0:
            raise TestFail('dump without -D %s' % res.what())
        img = res.out.strip()
        if res.out.count('\n') != 1 or not re.fullmatch(r'%s/process-%d-\d{8}T\d{6}Z' % (re.escape(root), p.pid),
                                                          img):
            raise TestFail('dump without -D printed %r' % res.out)
        p.wait(10)
        for d in (ctx.path('ckpt'), root, img):
            if os.stat(d).st_mode & 0o777 != 0o700:
                raise TestFail('%s is mode %o, not 700' % (d, os.stat(d).st_mode & 0o777))
        res = ctx.stasis(['restore', '--type', 'docker', '-D', img], env=env)
        if res.rc != 1 or 'process' not in res.err or 'docker' not in res.err:
            raise TestFail('restore --type docker of a process image %s' % res.what())
        res = ctx.stasis(['restore', '-D', img, '--keep-ip'], env=env)
        if res.rc != 1 or '--keep-ip' not in res.err or res.err.strip().count('\n'):
            raise TestFail('restore --keep-ip of a process image %s' % res.what())
        res = ctx.stasis(['restore', '--type', 'process', '-D', img, '--detach'], env=env)
        if res.rc != 0 or int(res.out.split()[-1]) != p.pid:
            raise TestFail('restore --type process %s' % res.what())
        os.kill(p.pid, 9)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


TESTS = [
    Test('cli:usage', t_cli_usage, 30),
    Test('cli:check', t_cli_check, 30),
    Test('cli:inspect', t_cli_inspect, 60),
    Test('python3', t_python, 60),
    Test('inherit-fd', t_inherit_fd, 60),
    Test('cli:default-dir', t_default_dir, 60),
]
