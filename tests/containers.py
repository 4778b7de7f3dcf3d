# SPDX-License-Identifier: LGPL-2.1-or-later
"""Container tests (issue 4): real runc containers built offline from the
busybox-static binary, dumped and restored as new containers. Each test
names its containers after its own pid and removes them, pass or fail.
Used by run.py."""
import json
import os
import shutil
import subprocess
import time

import stasistest as st


class ContainerFail(Exception):
    pass


class ContainerSkip(Exception):
    pass


COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> /data/count; echo tick $i; sleep 0.2; done'


def runc(*args, check=True, timeout=30):
    r = subprocess.run(['runc'] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise ContainerFail('runc %s: %s' % (' '.join(args), r.stderr.strip()[-300:]))
    return r


def make_bundle(root, args):
    """A busybox bundle: rootfs with the static busybox, config from `runc spec`."""
    bb = shutil.which('busybox')
    if not bb or not shutil.which('runc'):
        raise ContainerSkip('runc or busybox not installed (make deps installs them)')
    rootfs = os.path.join(root, 'rootfs')
    for d in ('bin', 'data', 'proc', 'dev', 'sys', 'tmp', 'etc'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy(bb, os.path.join(rootfs, 'bin', 'busybox'))
    for a in ('sh', 'sleep', 'echo', 'cat', 'ls', 'rm', 'httpd', 'wget'):
        os.symlink('busybox', os.path.join(rootfs, 'bin', a))
    subprocess.run(['runc', 'spec'], cwd=root, check=True)
    cfg_path = os.path.join(root, 'config.json')
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg['process']['terminal'] = False
    cfg['process']['args'] = args
    cfg['root']['readonly'] = False
    with open(cfg_path, 'w') as f:
        json.dump(cfg, f)
    return rootfs


class Containers:
    """Containers a test made, deleted at the end by id."""

    def __init__(self, ctx):
        self.ctx, self.ids = ctx, []

    def name(self, what):
        cid = 'stasis-test-%d-%s' % (os.getpid(), what)
        self.ids.append(cid)
        return cid

    def cleanup(self):
        for cid in self.ids:
            runc('delete', '--force', cid, check=False)
            shutil.rmtree('/run/stasis/runc/%s' % cid, ignore_errors=True)


def count_lines(rootfs):
    try:
        with open(os.path.join(rootfs, 'data', 'count')) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def wait_count(rootfs, n, timeout=10):
    end = time.monotonic() + timeout
    while len(count_lines(rootfs)) < n:
        if time.monotonic() > end:
            raise ContainerFail('the container counted to %d only' % len(count_lines(rootfs)))
        time.sleep(0.05)


def t_runc(ctx):
    cs = Containers(ctx)
    out = open(ctx.path('container.out'), 'ab')
    try:
        bundle = ctx.path('bundle')
        os.mkdir(bundle)
        rootfs = make_bundle(bundle, ['sh', '-c', COUNTER])
        old, new = cs.name('a'), cs.name('b')
        subprocess.run(['runc', 'run', '-d', '--bundle', bundle, old], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, check=True, timeout=30)
        wait_count(rootfs, 3)
        # A file made by the container, and one it deleted, must stay so.
        runc('exec', old, 'sh', '-c', 'echo made > /data/made; rm /bin/ls')
        img = ctx.path('img')
        res = ctx.stasis(['dump', '--type', 'runc', '--id', old, '-D', img, '-v', '--log-file', img + '-dump.log'])
        if res.rc != 0:
            raise ContainerFail('dump %s' % res.what())
        state = json.loads(runc('state', old).stdout)
        if state['status'] != 'stopped':
            raise ContainerFail('the dumped container is %s, expected stopped' % state['status'])
        before = count_lines(rootfs)
        # As with `runc run -d`, the container's stdio is the caller's: a
        # file here, which outlives the restore command.
        rc = subprocess.run([ctx.r.stasis, 'restore', '-D', img, '--id', new, '-v', '--log-file',
                             img + '-restore.log'], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            timeout=60).returncode
        if rc != 0:
            raise ContainerFail('restore exit %d (see %s)' % (rc, img + '-restore.log'))
        state = json.loads(runc('state', new).stdout)
        if state['status'] != 'running':
            raise ContainerFail('the restored container is %s' % state['status'])
        wait_count(rootfs, len(before) + 5)
        nums = count_lines(rootfs)
        if nums != list(range(1, len(nums) + 1)):
            raise ContainerFail('the count did not carry on: %s' % nums[len(before) - 3:len(before) + 3])
        if runc('exec', new, 'cat', '/data/made').stdout.strip() != 'made':
            raise ContainerFail('the file the container made is not there')
        if runc('exec', new, 'sh', '-c', 'test -e /bin/ls && echo yes || echo no').stdout.strip() != 'no':
            raise ContainerFail('the file the container deleted is back')
        if [f for f in os.listdir(rootfs) if f.startswith('.stasis')]:
            raise ContainerFail('a stasis file is left in the container: %s' % os.listdir(rootfs))
        ps = runc('ps', new).stdout
        if 'sh -c' not in ps:
            raise ContainerFail('runc ps does not show the restored shell: %r' % ps)
        runc('kill', new, 'KILL')
        end = time.monotonic() + 10
        while json.loads(runc('state', new).stdout)['status'] != 'stopped':
            if time.monotonic() > end:
                raise ContainerFail('runc kill did not stop the restored container')
            time.sleep(0.05)
    finally:
        cs.cleanup()
        out.close()


def t_runc_bad(ctx):
    # Unknown container: exit 1 and one line naming it; nothing made.
    if not shutil.which('runc'):
        raise ContainerSkip('runc is not installed')
    res = ctx.stasis(['dump', '--type', 'runc', '--id', 'stasis-no-such-container', '-D', ctx.path('img')])
    lines = [l for l in res.err.splitlines() if l.startswith('stasis:')]
    if res.rc != 1 or not any('stasis-no-such-container' in l for l in lines):
        raise ContainerFail('dump of an unknown container %s: %r' % (res.what(), res.err[-300:]))
    if os.path.exists(os.path.join(ctx.path('img'), 'manifest.json')):
        raise ContainerFail('a failed dump left an image')


TESTS = [('runc:counter', t_runc, 90), ('runc:unknown-container', t_runc_bad, 30)]
