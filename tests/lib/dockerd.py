# SPDX-License-Identifier: LGPL-2.1-or-later
"""The run's own dockerd, shared by the Docker and containerd tests.

`shared(ctx)` starts it for the first test that needs it (own data and exec
roots and socket under /run, so nothing of a system daemon is touched) and
imports a busybox image (`IMAGE`) into it, built offline from the
busybox-static binary. It stays up for the following tests, and is stopped
by its pid when the run ends, however it ends (Runner.at_end). If it
could not start, later tests fail with the same reason without trying
again. Tests remove their own containers, pass or fail.
"""
import json
import os
import shutil
import subprocess
import time

from runner import TestFail, TestSkip

IMAGE = 'stasis-busybox:test'
BUSYBOX_APPLETS = ('sh', 'sleep', 'echo', 'cat', 'ls', 'rm', 'httpd', 'wget', 'hostname', 'grep', 'mkdir')

_shared = None
_failed = None


def shared(ctx):
    """The run's dockerd with IMAGE imported; raises TestSkip when docker is
    not installed, TestFail when it does not come up."""
    global _shared, _failed
    if _failed:
        raise _failed
    if _shared is None:
        if not shutil.which('dockerd') or not shutil.which('docker') or not shutil.which('busybox'):
            raise TestSkip('docker.io or busybox is not installed (make deps installs them)')
        try:
            d = Dockerd(ctx.r.tmproot)
            ctx.r.at_end(d.stop)
            ctx.r.keep_alive(d.pids)
            d.wait_up()
            rootfs = os.path.join(ctx.r.tmproot, 'busybox-rootfs')
            busybox_rootfs(rootfs)
            d.import_dir(rootfs, IMAGE)
            shutil.rmtree(rootfs, ignore_errors=True)
        except TestFail as e:
            _failed = e
            raise
        _shared = d
    return _shared


def busybox_rootfs(rootfs):
    """A root filesystem of the static busybox and its applets, with a file
    /data/fromimage for the tests to delete, and a directory /w that any
    user may write to."""
    os.makedirs(os.path.join(rootfs, 'bin'))
    os.makedirs(os.path.join(rootfs, 'data'))
    shutil.copy(shutil.which('busybox'), os.path.join(rootfs, 'bin', 'busybox'))
    for a in BUSYBOX_APPLETS:
        os.symlink('busybox', os.path.join(rootfs, 'bin', a))
    with open(os.path.join(rootfs, 'data', 'fromimage'), 'w') as f:
        f.write('in the image\n')
    # Writable by any user, as /tmp is.
    os.makedirs(os.path.join(rootfs, 'w'))
    os.chmod(os.path.join(rootfs, 'w'), 0o1777)


class Dockerd:
    """A dockerd of our own, started in a session of its own and stopped by
    its pid."""

    def __init__(self, logdir):
        # Short paths: containerd's sockets live under exec-root.
        self.root = '/run/stasis-test-docker-%d' % os.getpid()
        os.makedirs(self.root, exist_ok=True)
        self.sock = os.path.join(self.root, 'docker.sock')
        self.env = dict(os.environ, DOCKER_HOST='unix://' + self.sock)
        self.logpath = os.path.join(logdir, 'dockerd.log')
        self.log = open(self.logpath, 'ab')
        self.p = subprocess.Popen(['dockerd', '--data-root', os.path.join(self.root, 'data'), '--exec-root',
                                   os.path.join(self.root, 'exec'), '--pidfile', os.path.join(self.root, 'pid'),
                                   '-H', 'unix://' + self.sock], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True)

    def wait_up(self, timeout=60):
        end = time.monotonic() + timeout
        while self.docker('version', check=False).returncode != 0:
            if self.p.poll() is not None or time.monotonic() > end:
                raise TestFail('dockerd did not come up (see %s, kept with --keep)' % self.logpath)
            time.sleep(0.2)

    def pids(self):
        """dockerd and the containerd shims, which double-fork and so become
        children of the runner (a subreaper): the per-test cleanup must
        leave them running."""
        out = set()
        if self.p.poll() is None:
            out.add(self.p.pid)
        for name in os.listdir('/proc'):
            try:
                with open('/proc/%s/comm' % name, errors='replace') as f:
                    if f.read().startswith('containerd-shim'):
                        out.add(int(name))
            except (OSError, ValueError):
                pass
        return out

    def docker(self, *args, check=True, inp=None, timeout=60):
        r = subprocess.run(['docker'] + list(args), env=self.env, capture_output=True, input=inp, timeout=timeout)
        if check and r.returncode != 0:
            raise TestFail('docker %s: %s' % (' '.join(args[:3]), r.stderr.decode(errors='replace')[-300:]))
        return r

    def inspect(self, cid):
        return json.loads(self.docker('inspect', cid).stdout)[0]

    def containerd_env(self):
        """Environment for `ctr` and `stasis --type containerd`: dockerd
        runs its own containerd unless a system one is there."""
        sock = os.path.join(self.root, 'exec', 'containerd', 'containerd.sock')
        if not os.path.exists(sock):
            sock = '/run/containerd/containerd.sock'
        return dict(self.env, CONTAINERD_ADDRESS=sock)

    def import_dir(self, rootfs, tag):
        tar = subprocess.run(['tar', '-C', rootfs, '-c', '.'], capture_output=True, check=True).stdout
        self.docker('import', '-', tag, inp=tar)

    def stop(self):
        global _shared
        _shared = None
        if self.p.poll() is None:
            # Containers first, then the daemon, by its pid.
            ids = self.docker('ps', '-aq', check=False).stdout.decode().split()
            if ids:
                self.docker('rm', '-f', *ids, check=False)
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        subprocess.run(['umount', '-R', os.path.join(self.root, 'exec')], capture_output=True)
        subprocess.run(['umount', '-R', os.path.join(self.root, 'data')], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
