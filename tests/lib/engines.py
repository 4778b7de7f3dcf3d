# SPDX-License-Identifier: LGPL-2.1-or-later
"""Docker, containerd (Docker's `moby` namespace) and Podman as the shared
container scenarios (ctrcases.py) and bench/containers.py use them: run a
container, exec in it, copy out of it, its address and host pid, import an
image, and stasis's dump and restore of it. One scenario, written once,
then runs on each engine.

An engine wraps the run's daemon object (dockerd.Dockerd, or the Podman
root of t_podman.py) and never starts or stops it. Podman is passed in,
not imported, so that this module does not depend on a test module."""
import io
import json
import subprocess
import tarfile

from runner import TestFail


class Engine:
    """What Docker and Podman share; subclasses set `name`, `dump_type`,
    `busybox` (the run's busybox image) and `cli`."""

    def exec(self, cid, *cmd, check=True):
        return self.cli('exec', cid, *cmd, check=check).stdout.decode(errors='replace')

    def inspect(self, cid):
        return json.loads(self.cli('inspect', cid).stdout)[0]

    def pid(self, cid):
        return self.inspect(cid)['State']['Pid']

    def running(self, cid):
        return self.inspect(cid)['State']['Running']

    def cp_tar(self, cid, path):
        """path of container cid (running or stopped) as an open tar."""
        return tarfile.open(fileobj=io.BytesIO(self.cli('cp', cid + ':' + path, '-').stdout))

    def import_dir(self, rootfs, tag):
        tar = subprocess.run(['tar', '-C', rootfs, '-c', '.'], capture_output=True, check=True).stdout
        self.cli('import', '-', tag, inp=tar)

    def rmi(self, tag):
        self.cli('rmi', tag, check=False)

    def stasis(self, ctx, *args, timeout=180):
        return subprocess.run([ctx.r.stasis] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def dump(self, ctx, cid, img, *extra):
        """stasis dump of cid into img (its log next to it); the container is
        stopped when it returns."""
        r = self.stasis(ctx, 'dump', *self.dump_type, '--id', cid, '-D', img, '-v', '--log-file',
                        img + '-dump.log', *extra)
        if r.returncode != 0:
            raise TestFail('%s dump exit %d: %s' % (self.name, r.returncode, r.stderr[-300:]))
        return r

    def restore(self, ctx, img, new, *extra):
        r = self.stasis(ctx, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log', *extra)
        if r.returncode != 0:
            raise TestFail('%s restore exit %d: %s' % (self.name, r.returncode, r.stderr[-300:]))
        return r


class DockerEngine(Engine):
    """The run's dockerd; with containerd=True the dump goes through its
    containerd (`--type containerd --namespace moby`, found at --address),
    and the restore makes a Docker container, as for any moby image."""
    busybox = 'stasis-busybox:test'
    restarts_afresh = True  # a restored container keeps its configuration

    def __init__(self, d, containerd=False):
        self.d, self.env = d, d.env
        self.name = 'containerd' if containerd else 'docker'
        self.dump_type = ['--type', 'docker']
        if containerd:
            self.dump_type = ['--type', 'containerd', '--namespace', 'moby', '--address',
                              d.containerd_env()['CONTAINERD_ADDRESS']]

    def cli(self, *args, check=True, inp=None, timeout=60):
        return self.d.docker(*args, check=check, inp=inp, timeout=timeout)

    def run(self, name, image, *args):
        self.cli('run', '-d', '--name', name, image, *args)

    def ip(self, cid):
        return self.inspect(cid)['NetworkSettings']['IPAddress']

    def remove(self, *names):
        for n in names:
            self.cli('rm', '-f', n, check=False)


class PodmanEngine(Engine):
    """The run's Podman root (t_podman.Podman): containers on its network,
    with the ulimits this machine needs."""
    busybox = 'stasis-busybox:test'
    name = 'podman'
    dump_type = ['--type', 'podman']
    restarts_afresh = True  # a restored container keeps its configuration

    def __init__(self, p):
        self.p, self.env = p, p.env

    def cli(self, *args, check=True, inp=None, timeout=60):
        return self.p.podman(*args, check=check, inp=inp, timeout=timeout)

    def run(self, name, image, *args):
        self.p.run(name, image, *args)

    def ip(self, cid):
        nets = self.inspect(cid)['NetworkSettings']['Networks']
        return next(iter(nets.values()))['IPAddress']

    def remove(self, *names):
        for n in names:
            self.cli('rm', '-f', '-t', '0', n, check=False)
