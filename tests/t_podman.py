# SPDX-License-Identifier: LGPL-2.1-or-later
"""Podman tests: rootful Podman containers of a busybox image imported
offline, dumped and restored as new containers, one scenario a test.

The run's Podman state lives in a root of its own (/run/stasis-test-podman-
PID: storage, run root, libpod's tmp dir with file locks, events, and a
network config dir with one network on a bridge of its own), chosen through
CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, which stasis's `podman` calls
inherit: nothing of the machine's own Podman is touched. It is made by the
first test that needs it and removed when the run ends. On this machine
Podman needs runc (crun fails on hybrid cgroups; containers.conf says so)
and explicit ulimits (root lacks CAP_SYS_RESOURCE to raise them). Tests
remove their own containers, pass or fail. Used by run.py."""
import json
import os
import shutil
import subprocess
import time

import dockerd
from ctrcases import W_COUNTER, fidelity_case, multi_case, redis_case
from engines import PodmanEngine
from runner import Test, TestFail, TestSkip

COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> /data/count; echo tick $i; sleep 0.2; done'
IMAGE = 'stasis-busybox:test'
NET = 'stasisnet'
ULIMITS = ('--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096')

_shared = None
_failed = None


def shared(ctx):
    """The run's Podman root with IMAGE imported; TestSkip without podman."""
    global _shared, _failed
    if _failed:
        raise _failed
    if _shared is None:
        if not shutil.which('podman') or not shutil.which('busybox'):
            raise TestSkip('podman or busybox is not installed (make deps installs them)')
        p = Podman()
        ctx.r.at_end(p.remove)
        ctx.r.keep_alive(p.conmons)
        try:
            rootfs = os.path.join(ctx.r.tmproot, 'podman-rootfs')
            dockerd.busybox_rootfs(rootfs)
            tar = subprocess.run(['tar', '-C', rootfs, '-c', '.'], capture_output=True, check=True).stdout
            shutil.rmtree(rootfs, ignore_errors=True)
            p.podman('import', '-', IMAGE, inp=tar)
        except TestFail as e:
            _failed = e
            raise
        _shared = p
    return _shared


class Podman:
    """Podman's configuration and state for this run, in a root of its own."""

    def __init__(self):
        self.root = '/run/stasis-test-podman-%d' % os.getpid()
        os.makedirs(os.path.join(self.root, 'net'))
        storage, containers = os.path.join(self.root, 'storage.conf'), os.path.join(self.root, 'containers.conf')
        with open(storage, 'w') as f:
            f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n'
                    % (self.root, self.root))
        with open(containers, 'w') as f:
            f.write('[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nlock_type = "file"\n'
                    'tmp_dir = "{0}/tmp"\nvolume_path = "{0}/volumes"\nevents_logger = "file"\n'
                    'events_logfile_path = "{0}/events.log"\n[network]\nnetwork_backend = "netavark"\n'
                    'network_config_dir = "{0}/net"\n'
                    .format(self.root))
        # A network on a bridge of its own, so that no bridge of the
        # machine's Podman (podman0, ...) is shared. Netavark's format,
        # named in containers.conf: with a CNI config in /etc/cni/net.d
        # Podman would otherwise choose CNI and not find this network.
        n = os.getpid() % 1000000
        with open(os.path.join(self.root, 'net', NET + '.json'), 'w') as f:
            json.dump({'name': NET, 'id': '%064x' % os.getpid(), 'driver': 'bridge',
                       'network_interface': 'stpm%d' % n, 'created': '2024-01-01T00:00:00Z',
                       'subnets': [{'subnet': '10.89.%d.0/24' % (n % 200 + 20),
                                    'gateway': '10.89.%d.1' % (n % 200 + 20)}],
                       'ipv6_enabled': False, 'internal': False, 'dns_enabled': False,
                       'ipam_options': {'driver': 'host-local'}}, f)
        self.env = dict(os.environ, CONTAINERS_CONF=containers, CONTAINERS_STORAGE_CONF=storage)

    def podman(self, *args, check=True, inp=None, timeout=60):
        r = subprocess.run(['podman'] + list(args), env=self.env, capture_output=True, input=inp, timeout=timeout)
        if check and r.returncode != 0:
            raise TestFail('podman %s: %s' % (' '.join(args[:3]), r.stderr.decode(errors='replace')[-300:]))
        return r

    def inspect(self, cid):
        return json.loads(self.podman('inspect', cid).stdout)[0]

    def run(self, name, *args):
        """A container of IMAGE on our network, with the ulimits this
        machine needs."""
        return self.podman('run', '-d', '--name', name, '--network', NET, *ULIMITS, *args)

    def conmons(self):
        """The conmons of our containers: they double-fork and so become
        children of the runner (a subreaper), and must outlive a test's
        cleanup only while their container does; a test removes its own."""
        out = set()
        for name in os.listdir('/proc'):
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as f:
                    cmd = f.read()
                if cmd.startswith(b'/usr/bin/conmon') and self.root.encode() in cmd:
                    out.add(int(name))
            except (OSError, ValueError):
                pass
        return out

    def remove(self):
        global _shared
        _shared = None
        self.podman('rm', '-af', '-t', '0', check=False)
        self.podman('rmi', '-af', check=False)
        subprocess.run(['umount', '-R', os.path.join(self.root, 'root', 'overlay')], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def stasis(ctx, p, *args):
    return subprocess.run([ctx.r.stasis] + list(args), env=p.env, capture_output=True, text=True, timeout=120)


def remove(p, *names):
    for n in names:
        p.podman('rm', '-f', '-t', '0', n, check=False)


def n_containers(p):
    return len(p.podman('ps', '-aq').stdout.split())


def t_counter(ctx):
    # The counting shell, with a file it made, a file of the image it
    # deleted and a tmpfs, is dumped, removed and restored as a new
    # container: it counts on, in Podman's view an ordinary container.
    p = shared(ctx)
    name, new = 'stasis-p1-%d' % os.getpid(), 'stasis-p2-%d' % os.getpid()
    try:
        p.run(name, '--tmpfs', '/scratch', IMAGE, 'sh', '-c', COUNTER)
        p.podman('exec', name, 'sh', '-c', 'while [ ! -s /data/count ]; do sleep 0.1; done; '
                 'echo made > /data/made; rm /data/fromimage; echo in-tmpfs > /scratch/t')
        img = ctx.path('img')
        r = stasis(ctx, p, 'dump', '--type', 'podman', '--id', name, '-D', img, '-v', '--log-file',
                   img + '-dump.log')
        if r.returncode != 0:
            raise TestFail('dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        end = time.monotonic() + 10
        while p.inspect(name)['State']['Running']:
            if time.monotonic() > end:
                raise TestFail('the dumped container still runs')
            time.sleep(0.1)
        before = p.podman('logs', name).stdout.decode().split()
        p.podman('rm', name)
        r = stasis(ctx, p, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        check_restored(p, new, int(before[-1]))
        restore_fails(ctx, p, img, new)
    finally:
        remove(p, name, new)


def check_restored(p, new, last):
    if not p.inspect(new)['State']['Running']:
        raise TestFail('the restored container is not running')
    if new not in p.podman('ps', '--format', '{{.Names}}').stdout.decode().split():
        raise TestFail('podman ps does not show %s' % new)
    time.sleep(1.5)
    nums = [int(x) for x in p.podman('exec', new, 'cat', '/data/count').stdout.decode().split()]
    if nums != list(range(1, len(nums) + 1)) or len(nums) < last + 3:
        raise TestFail('the count did not carry on: %s' % nums[-8:])
    if p.podman('exec', new, 'cat', '/data/made').stdout.decode().strip() != 'made':
        raise TestFail('the file the container made is gone')
    if p.podman('exec', new, 'ls', '/data/fromimage', check=False).returncode == 0:
        raise TestFail('the file the container deleted from the image is back')
    if p.podman('exec', new, 'cat', '/scratch/t').stdout.decode().strip() != 'in-tmpfs':
        raise TestFail('the tmpfs content is lost')
    if 'stasis' in p.podman('exec', new, 'ls', '-a', '/').stdout.decode():
        raise TestFail('a stasis file is visible in the restored container')
    logs = p.podman('logs', new).stdout.decode().split('\n')
    if 'tick %d' % (last + 2) not in logs:
        raise TestFail('podman logs lacks output written after the restore: %r' % logs[-3:])


def restore_fails(ctx, p, img, new):
    """A restore under a taken name fails with one clear error and leaves no
    container; then podman stop stops the restored one."""
    n_before = n_containers(p)
    r = stasis(ctx, p, 'restore', '-D', img, '--id', new)
    if r.returncode != 1 or new not in r.stderr:
        raise TestFail('restore under a taken name: exit %d %r' % (r.returncode, r.stderr))
    if n_containers(p) != n_before:
        raise TestFail('a failed restore left a container behind')
    p.podman('stop', '-t', '1', new)
    if p.inspect(new)['State']['Running']:
        raise TestFail('podman stop did not stop the restored container')


# What the restored container's configuration must keep: the original's,
# as `podman inspect` shows it (DESIGN.md §5a).
FIDELITY = [('HostConfig', k) for k in ('CapAdd', 'CapDrop', 'SecurityOpt', 'Privileged', 'Memory', 'Ulimits',
                                        'RestartPolicy')] + \
    [('Config', k) for k in ('User', 'Entrypoint', 'Cmd', 'WorkingDir', 'Image')] + \
    [('EffectiveCaps',), ('BoundingCaps',), ('Path',), ('Args',)]


def t_fidelity(ctx):
    # A container run with a user, capabilities and a memory limit of its
    # own (ctrcases.fidelity_case).
    p = shared(ctx)

    def start(name):
        p.run(name, '--runtime', 'runc', '--user', '1000:1000', '--cap-add', 'SYS_PTRACE', '--cap-drop',
              'NET_RAW', '--memory', '64m', IMAGE, 'sh', '-c', W_COUNTER)
    fidelity_case(ctx, PodmanEngine(p), start, FIDELITY, 'pf')


def t_unknown(ctx):
    # Unknown container: exit 1, one line naming it, no image made.
    p = shared(ctx)
    img = ctx.path('img')
    r = stasis(ctx, p, 'dump', '--type', 'podman', '--id', 'stasis-no-such-container', '-D', img)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    if r.returncode != 1 or len(lines) != 1 or 'stasis-no-such-container' not in lines[0]:
        raise TestFail('dump of an unknown container: exit %d %r' % (r.returncode, r.stderr[-300:]))
    if os.path.exists(os.path.join(img, 'manifest.json')):
        raise TestFail('a failed dump left an image')


def t_multi(ctx):
    # A shell with eight background loops: nine processes, each on its pid
    # and counting on after the restore (the scenario of ctrcases.py).
    multi_case(ctx, PodmanEngine(shared(ctx)))


def t_redis(ctx):
    # Redis with two I/O threads and 20,000 keys: same keys, same run_id.
    redis_case(ctx, PodmanEngine(shared(ctx)))


TESTS = [
    Test('podman:counter', t_counter, 180),
    Test('podman:unknown-container', t_unknown, 60),
    Test('podman:fidelity', t_fidelity, 180),
    Test('podman:pids:9-processes', t_multi, 180),
    Test('podman:pids:redis', t_redis, 180),
]
