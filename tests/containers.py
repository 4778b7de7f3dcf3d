# SPDX-License-Identifier: LGPL-2.1-or-later
"""Container tests: real runc, Docker and containerd containers built
offline from the busybox-static binary, dumped and restored as new
containers, one scenario a test. Each test names its containers after the
runner's pid and removes them, pass or fail. The Docker and containerd
tests share the run's dockerd (tests/lib/dockerd.py)."""
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import dockerd
from ctrcases import SEC, W_COUNTER, fidelity_case, wait_w_count
from engines import DockerEngine
from runner import Test, TestFail, TestSkip

COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> /data/count; echo tick $i; sleep 0.2; done'


def runc(*args, check=True, timeout=30):
    r = subprocess.run(['runc'] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise TestFail('runc %s: %s' % (' '.join(args), r.stderr.strip()[-300:]))
    return r


def make_bundle(root, args):
    """A busybox bundle: rootfs with the static busybox, config from `runc spec`."""
    bb = shutil.which('busybox')
    if not bb or not shutil.which('runc'):
        raise TestSkip('runc or busybox not installed (make deps installs them)')
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
            raise TestFail('the container counted to %d only' % len(count_lines(rootfs)))
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
            raise TestFail('dump %s' % res.what())
        state = json.loads(runc('state', old).stdout)
        if state['status'] != 'stopped':
            raise TestFail('the dumped container is %s, expected stopped' % state['status'])
        before = count_lines(rootfs)
        # As with `runc run -d`, the container's stdio is the caller's: a
        # file here, which outlives the restore command.
        rc = subprocess.run([ctx.r.stasis, 'restore', '-D', img, '--id', new, '-v', '--log-file',
                             img + '-restore.log'], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            timeout=60).returncode
        if rc != 0:
            raise TestFail('restore exit %d (see %s)' % (rc, img + '-restore.log'))
        state = json.loads(runc('state', new).stdout)
        if state['status'] != 'running':
            raise TestFail('the restored container is %s' % state['status'])
        wait_count(rootfs, len(before) + 5)
        nums = count_lines(rootfs)
        if nums != list(range(1, len(nums) + 1)):
            raise TestFail('the count did not carry on: %s' % nums[len(before) - 3:len(before) + 3])
        if runc('exec', new, 'cat', '/data/made').stdout.strip() != 'made':
            raise TestFail('the file the container made is not there')
        if runc('exec', new, 'sh', '-c', 'test -e /bin/ls && echo yes || echo no').stdout.strip() != 'no':
            raise TestFail('the file the container deleted is back')
        if [f for f in os.listdir(rootfs) if f.startswith('.stasis')]:
            raise TestFail('a stasis file is left in the container: %s' % os.listdir(rootfs))
        ps = runc('ps', new).stdout
        if 'sh -c' not in ps:
            raise TestFail('runc ps does not show the restored shell: %r' % ps)
        runc('kill', new, 'KILL')
        end = time.monotonic() + 10
        while json.loads(runc('state', new).stdout)['status'] != 'stopped':
            if time.monotonic() > end:
                raise TestFail('runc kill did not stop the restored container')
            time.sleep(0.05)
    finally:
        cs.cleanup()
        out.close()


def t_runc_bad(ctx):
    # Unknown container: exit 1 and one line naming it; nothing made.
    if not shutil.which('runc'):
        raise TestSkip('runc is not installed')
    res = ctx.stasis(['dump', '--type', 'runc', '--id', 'stasis-no-such-container', '-D', ctx.path('img')])
    lines = [l for l in res.err.splitlines() if l.startswith('stasis:')]
    if res.rc != 1 or not any('stasis-no-such-container' in l for l in lines):
        raise TestFail('dump of an unknown container %s: %r' % (res.what(), res.err[-300:]))
    if os.path.exists(os.path.join(ctx.path('img'), 'manifest.json')):
        raise TestFail('a failed dump left an image')




def stasis(ctx, d, *args):
    return subprocess.run([ctx.r.stasis] + list(args), env=d.env, capture_output=True, text=True, timeout=120)


def n_containers(d):
    return len(d.docker('ps', '-aq').stdout.split())


def remove(d, *names):
    for n in names:
        d.docker('rm', '-f', n, check=False)




def t_docker_counter(ctx):
    # A counting container with a tmpfs and changes to its image's files is
    # dumped and restored as a new container; then restores that must fail
    # (the name is taken, the image is gone) fail cleanly. It runs from a
    # tag of its own, which it removes at the end.
    d = dockerd.shared(ctx)
    tag = 'stasis-busybox:counter'
    name, new = 'stasis-c1-%d' % os.getpid(), 'stasis-c2-%d' % os.getpid()
    d.docker('tag', dockerd.IMAGE, tag)
    try:
        d.docker('run', '-d', '--name', name, '--tmpfs', '/scratch', tag, 'sh', '-c', COUNTER)
        d.docker('exec', name, 'sh', '-c', 'while [ ! -s /data/count ]; do sleep 0.1; done; '
                 'echo made > /data/made; rm /data/fromimage; echo in-tmpfs > /scratch/t')
        img = ctx.path('img')
        docker_bad_input(ctx, d, name)
        old, before = docker_dump(ctx, d, name, img)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        docker_check_restored(d, new, old, before)
        docker_restore_fails(ctx, d, img, new, tag)
    finally:
        remove(d, name, new)
        d.docker('rmi', tag, check=False)


def docker_bad_input(ctx, d, name):
    """Unknown container, daemon unreachable: exit 1 and a clear error."""
    r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', 'stasis-nope', '-D', ctx.path('x'))
    if r.returncode != 1 or 'stasis-nope' not in r.stderr:
        raise TestFail('dump of an unknown container: exit %d %r' % (r.returncode, r.stderr))
    bad = dict(d.env, DOCKER_HOST='unix://' + ctx.path('no-daemon.sock'))
    r = subprocess.run([ctx.r.stasis, 'dump', '--type', 'docker', '--id', name, '-D', ctx.path('y')], env=bad,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 1 or 'dockerd running' not in r.stderr:
        raise TestFail('dump without a daemon: exit %d %r' % (r.returncode, r.stderr))


def docker_dump(ctx, d, name, img):
    """Dumps container `name` (which must stop) and removes it; returns its
    inspect record and /proc/1/status security lines, and its count file."""
    old = d.inspect(name)
    old['sec'] = d.docker('exec', name, 'sh', '-c', SEC).stdout
    r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file', img + '-dump.log')
    if r.returncode != 0:
        raise TestFail('dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
    end = time.monotonic() + 10
    while d.inspect(name)['State']['Running']:
        if time.monotonic() > end:
            raise TestFail('the dumped container still runs')
        time.sleep(0.1)
    tar = tarfile.open(fileobj=io.BytesIO(d.docker('cp', name + ':/data/count', '-').stdout))
    before = tar.extractfile(tar.getmembers()[0]).read().decode()
    d.docker('rm', name)
    return old, before


def docker_check_restored(d, new, old, before):
    now = d.inspect(new)
    if not now['State']['Running']:
        raise TestFail('the restored container is not running')
    if new not in d.docker('ps', '--format', '{{.Names}}').stdout.decode():
        raise TestFail('docker ps does not show %s' % new)
    time.sleep(1.5)
    count = d.docker('exec', new, 'cat', '/data/count').stdout.decode().split()
    nums = [int(x) for x in count]
    if nums != list(range(1, len(nums) + 1)) or len(nums) < len(before.split()) + 3:
        raise TestFail('the count did not carry on: %s' % nums[-8:])
    if d.docker('exec', new, 'cat', '/scratch/t').stdout.decode().strip() != 'in-tmpfs':
        raise TestFail('the tmpfs content is lost')
    sec = d.docker('exec', new, 'sh', '-c', SEC).stdout
    if sec != old['sec']:
        raise TestFail('credentials, capabilities or seccomp differ: %r vs %r' % (sec, old['sec']))
    if d.docker('exec', new, 'cat', '/data/made').stdout.decode().strip() != 'made':
        raise TestFail('the file the container made is gone')
    if d.docker('exec', new, 'ls', '/data/fromimage', check=False).returncode == 0:
        raise TestFail('the file the container deleted from the image is back')
    if d.docker('exec', new, 'ls', '-a', '/').stdout.decode().count('stasis'):
        raise TestFail('a stasis file is visible in the restored container')
    docker_check_identity(d, new, now, old)
    logs = d.docker('logs', new).stdout.decode().split('\n')
    last = int(before.split()[-1])
    if 'tick %d' % (last + 2) not in logs:
        raise TestFail('docker logs lacks output written after the restore: %r' % logs[-3:])


def docker_check_identity(d, new, now, old):
    """Hostname and address are the new container's, not the dumped one's."""
    host = d.docker('exec', new, 'cat', '/etc/hostname').stdout.decode().strip()
    if host != now['Config']['Hostname'] or host == old['Config']['Hostname']:
        raise TestFail('/etc/hostname is %r, not the new container\'s %r' % (host, now['Config']['Hostname']))
    hosts = d.docker('exec', new, 'cat', '/etc/hosts').stdout.decode()
    ip = now['NetworkSettings']['IPAddress']
    if not ip or ip not in hosts:
        raise TestFail('/etc/hosts does not hold the new address %r' % ip)


def docker_restore_fails(ctx, d, img, new, tag):
    """Sandbox creation that fails (the name is taken), and a missing image:
    one clear error each, nothing new left behind."""
    n_before = n_containers(d)
    r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
    if r.returncode != 1 or 'docker create' not in r.stderr:
        raise TestFail('restore under a taken name: exit %d %r' % (r.returncode, r.stderr))
    if n_containers(d) != n_before:
        raise TestFail('a failed restore left a container behind')
    d.docker('stop', '-t', '1', new)
    if d.inspect(new)['State']['Running']:
        raise TestFail('docker stop did not stop the restored container')
    d.docker('rm', new)
    d.docker('rmi', tag)  # only the tag: the shared image stays
    n_before = n_containers(d)
    r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
    if r.returncode != 1 or tag not in r.stderr:
        raise TestFail('restore without the image: exit %d %r' % (r.returncode, r.stderr))
    if n_containers(d) != n_before:
        raise TestFail('a failed restore left a container behind')


# What the restored container's runtime configuration must keep: the
# original's, as `docker inspect` shows it (DESIGN.md §5a).
FIDELITY = [('HostConfig', k) for k in ('CapAdd', 'CapDrop', 'SecurityOpt', 'Privileged', 'Memory', 'NanoCpus',
                                        'RestartPolicy', 'Tmpfs')] + \
    [('Config', k) for k in ('User', 'Entrypoint', 'Cmd', 'Env', 'WorkingDir', 'Image')] + [('Path',), ('Args',)]


def t_docker_fidelity(ctx):
    # A container run with a user, capabilities, limits and a restart policy
    # of its own (ctrcases.fidelity_case).
    d = dockerd.shared(ctx)
    eng = DockerEngine(d)

    def start(name):
        d.docker('run', '-d', '--name', name, '--user', '1000:1000', '--cap-add', 'SYS_PTRACE', '--cap-drop',
                 'NET_RAW', '--memory', '64m', '--cpus', '0.5', '--restart', 'unless-stopped', dockerd.IMAGE,
                 'sh', '-c', W_COUNTER)
    fidelity_case(ctx, eng, start, FIDELITY, 'f')


def t_containerd_moby(ctx):
    # A Docker container found through containerd (Docker's namespace), by
    # its name, at the address given with --address.
    d = dockerd.shared(ctx)
    name, new = 'stasis-c3-%d' % os.getpid(), 'stasis-c4-%d' % os.getpid()
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c', COUNTER)
        full = d.inspect(name)['Id']
        time.sleep(1)
        env = d.containerd_env()
        img = ctx.path('img')
        tasks = subprocess.run(['ctr', '--namespace', 'moby', 'task', 'ls'], env=env, capture_output=True, text=True)
        if full not in tasks.stdout:
            raise TestFail('ctr task ls does not show the container: %r' % tasks.stdout[-200:])
        r = stasis(ctx, d, 'dump', '--type', 'containerd', '--namespace', 'moby', '--id', name,
                   '--address', env['CONTAINERD_ADDRESS'], '-D', img)
        if r.returncode != 0:
            raise TestFail('containerd dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        d.docker('rm', '-f', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
        if r.returncode != 0:
            raise TestFail('restore of the containerd image exit %d: %s' % (r.returncode, r.stderr[-300:]))
        full_new = d.inspect(new)['Id']
        tasks = subprocess.run(['ctr', '--namespace', 'moby', 'task', 'ls'], env=env, capture_output=True, text=True)
        if full_new not in tasks.stdout or 'RUNNING' not in tasks.stdout:
            raise TestFail('ctr task ls does not show the restored task running: %r' % tasks.stdout[-300:])
        time.sleep(1)
        nums = [int(x) for x in d.docker('exec', new, 'cat', '/data/count').stdout.decode().split()]
        if nums != list(range(1, len(nums) + 1)):
            raise TestFail('containerd restore: the count did not carry on: %s' % nums[-8:])
        r = stasis(ctx, d, 'dump', '--type', 'containerd', '--namespace', 'moby', '--id', new,
                   '--address', ctx.path('nothing.sock'), '-D', ctx.path('img2'))
        if r.returncode != 1 or 'nothing.sock' not in r.stderr:
            raise TestFail('dump with a wrong --address: exit %d %r' % (r.returncode, r.stderr))
    finally:
        remove(d, name, new)


CHECKPOINT_ROOT = '/var/lib/stasis/checkpoints'


def t_containerd_seed(ctx):
    # The two commands of the seeds typed as written there: no -D (the dump
    # prints the directory it made under the default root), no
    # CONTAINERD_ADDRESS (the dockerd's own containerd is found), the short
    # id `docker ps` shows, and restore with --type containerd.
    d = dockerd.shared(ctx)
    name = 'stasis-c5-%d' % os.getpid()
    env = {k: v for k, v in d.env.items() if k != 'CONTAINERD_ADDRESS'}
    made = [p for p in ('/var/lib/stasis', CHECKPOINT_ROOT) if not os.path.exists(p)]
    img = None
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c', COUNTER)
        cid = d.docker('ps', '-q', '--filter', 'name=' + name).stdout.decode().strip()
        time.sleep(1)
        r = subprocess.run([ctx.r.stasis, 'dump', '--type', 'containerd', '--namespace', 'moby', '--id', cid],
                           env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise TestFail('seed dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        img = r.stdout.strip()
        if r.stdout.count('\n') != 1 or not img.startswith('%s/containerd-%s-' % (CHECKPOINT_ROOT, cid)):
            raise TestFail('the dump printed %r, not one new directory under %s' % (r.stdout, CHECKPOINT_ROOT))
        for p in [img] + made:
            if os.stat(p).st_mode & 0o777 != 0o700:
                raise TestFail('%s is mode %o, not 700' % (p, os.stat(p).st_mode & 0o777))
        before = d.docker('logs', name).stdout.decode().split()
        d.docker('rm', '-f', name)
        seed_restore_refusals(ctx, env, img)
        r = subprocess.run([ctx.r.stasis, 'restore', '--type', 'containerd', '--checkpoint-dir', img],
                           env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise TestFail('seed restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        time.sleep(1.5)
        nums = [int(x) for x in d.docker('exec', name, 'cat', '/data/count').stdout.decode().split()]
        if nums != list(range(1, len(nums) + 1)) or len(nums) < len(before) // 2 + 3:
            raise TestFail('seed restore: the count did not carry on: %s' % nums[-8:])
    finally:
        remove(d, name)
        if img and img.startswith(CHECKPOINT_ROOT + '/'):
            shutil.rmtree(img, ignore_errors=True)
        for p in reversed(made):
            try:
                os.rmdir(p)
            except OSError:
                pass


def seed_restore_refusals(ctx, env, img):
    """restore --type/--namespace that do not match the image: exit 1, both
    named, nothing created."""
    for args, want in ((['--type', 'docker'], ('containerd', 'docker')),
                       (['--type', 'containerd', '--namespace', 'k8s.io'], ('moby', 'k8s.io'))):
        r = subprocess.run([ctx.r.stasis, 'restore'] + args + ['--checkpoint-dir', img], env=env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 1 or not all(w in r.stderr for w in want):
            raise TestFail('restore %s of a containerd moby image: exit %d %r' % (' '.join(args), r.returncode,
                                                                                    r.stderr))


def http_get(ip, timeout=5):
    import urllib.request
    with urllib.request.urlopen('http://%s/index.html' % ip, timeout=timeout) as f:
        return f.read().decode()


def wait_http(ip, secret, timeout=10):
    end = time.monotonic() + timeout
    while True:
        try:
            if secret in http_get(ip):
                return
        except OSError:
            pass
        if time.monotonic() > end:
            raise TestFail('httpd in the container does not answer at %s' % ip)
        time.sleep(0.1)


def t_docker_httpd(ctx):
    # A server answers a new request after restore with what it held before.
    d = dockerd.shared(ctx)
    name, new = 'stasis-h1-%d' % os.getpid(), 'stasis-h2-%d' % os.getpid()
    secret = 'written in the container %d' % time.monotonic_ns()
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c',
                 'mkdir -p /www && echo "%s" > /www/index.html && exec httpd -f -p 80 -h /www' % secret)
        wait_http(d.inspect(name)['NetworkSettings']['IPAddress'], secret)
        img = ctx.path('img')
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img)
        if r.returncode != 0:
            raise TestFail('httpd dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        d.docker('rm', '-f', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
        if r.returncode != 0:
            raise TestFail('httpd restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        ip2 = d.inspect(new)['NetworkSettings']['IPAddress']
        got = http_get(ip2)
        if secret not in got:
            raise TestFail('the restored httpd at %s answered %r' % (ip2, got[:200]))
    finally:
        remove(d, name, new)


# What `docker inspect` of a restored container must show as the
# original's: (where in the record, field).
HOSTCONFIG_FIELDS = (('HostConfig', 'CapAdd'), ('HostConfig', 'CapDrop'), ('HostConfig', 'SecurityOpt'),
                     ('HostConfig', 'Privileged'), ('Config', 'User'), ('HostConfig', 'Memory'),
                     ('HostConfig', 'NanoCpus'), ('HostConfig', 'CpuQuota'), ('Config', 'Entrypoint'),
                     ('Config', 'Cmd'))


def field_diff(field, now, old):
    """'Field: what the restored container has instead of the original's';
    for two lists of names, what was added and what is missing."""
    if isinstance(now, list) and isinstance(old, list):
        more, less = [x for x in now if x not in old], [x for x in old if x not in now]
        return '%s %s%s' % (field, '+%s' % more if more else '', ' -%s' % less if less else '')
    return '%s %r, the original %r' % (field, now, old)


def t_docker_hostconfig(ctx):
    # A container given capabilities, a security option, a user and
    # limits: the restored container's configuration is the original's,
    # not one widened for the restore (issue 9). Each differing field is
    # named.
    d = dockerd.shared(ctx)
    name, new = 'stasis-hc1-%d' % os.getpid(), 'stasis-hc2-%d' % os.getpid()
    try:
        d.docker('run', '-d', '--name', name, '--cap-add', 'NET_ADMIN', '--cap-drop', 'MKNOD', '--security-opt',
                 'no-new-privileges', '--user', '1000:1000', '--memory', '64m', '--cpus', '0.5', dockerd.IMAGE,
                 'sh', '-c', 'while :; do sleep 0.2; done')
        old = d.inspect(name)
        img = ctx.path('img')
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file', img + '-dump.log')
        if r.returncode != 0:
            raise TestFail('dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        d.docker('rm', '-f', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        now = d.inspect(new)
        if not now['State']['Running']:
            raise TestFail('the restored container is not running')
        diff = [field_diff(f, now[part][f], old[part][f]) for part, f in HOSTCONFIG_FIELDS
                if now[part][f] != old[part][f]]
        if diff:
            raise TestFail('the restored container differs: ' + '; '.join(diff))
    finally:
        remove(d, name, new)


# restore --keep-ip's network: a subnet of its own, so that Docker gives
# fixed addresses on it (172.30.77.0/24: no other test or host route uses it).
KEEP_IP_SUBNET, KEEP_IP = '172.30.77.0/24', '172.30.77.17'


def stasis_refused(ctx, d, what, words, *args):
    """A stasis command that must fail with one line holding every word of
    words, and create no container."""
    n_before = n_containers(d)
    r = stasis(ctx, d, *args)
    lines = [x for x in r.stderr.split('\n') if x.strip()]
    if r.returncode != 1 or len(lines) != 1 or not all(w in r.stderr for w in words):
        raise TestFail('%s: exit %d, want 1 and one line naming %s: %r' % (what, r.returncode, words, r.stderr))
    if n_containers(d) != n_before:
        raise TestFail('%s left a container behind' % what)


def keep_ip_refused_on_bridge(ctx, d, name):
    """A container of the default bridge: --keep-ip is refused, nothing made."""
    d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c', 'while :; do sleep 0.2; done')
    img = ctx.path('img-bridge')
    r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img)
    if r.returncode != 0:
        raise TestFail('dump of %s exit %d: %s' % (name, r.returncode, r.stderr[-300:]))
    d.docker('rm', '-f', name)
    stasis_refused(ctx, d, 'restore --keep-ip of a default-bridge container', ['default bridge', '--subnet'],
                   'restore', '-D', img, '--keep-ip')


def t_docker_keep_ip(ctx):
    # restore --keep-ip on a user-defined network: refused while the
    # original holds the address (it is named), then the restored container
    # has the original's address and counts on; refused for a container of
    # the default bridge.
    d = dockerd.shared(ctx)
    net = 'stasis-net-%d' % os.getpid()
    name, new, br = ('stasis-ip%d-%d' % (i, os.getpid()) for i in range(3))
    d.docker('network', 'create', '--subnet', KEEP_IP_SUBNET, net)
    try:
        d.docker('run', '-d', '--name', name, '--network', net, '--ip', KEEP_IP, dockerd.IMAGE, 'sh', '-c', W_COUNTER)
        before = wait_w_count(DockerEngine(d), name, 3)
        img = ctx.path('img')
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file', img + '-dump.log')
        if r.returncode != 0:
            raise TestFail('dump of %s exit %d: %s' % (name, r.returncode, r.stderr[-300:]))
        d.docker('start', name)  # the original is back, on its address
        stasis_refused(ctx, d, 'restore --keep-ip while the original runs', [KEEP_IP, name], 'restore', '-D', img,
                       '--id', new, '--keep-ip')
        d.docker('rm', '-f', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '--keep-ip', '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore --keep-ip exit %d: %s' % (r.returncode, r.stderr[-300:]))
        ip = d.inspect(new)['NetworkSettings']['Networks'].get(net, {}).get('IPAddress')
        if ip != KEEP_IP:
            raise TestFail('the restored container is at %r on %s, not %s' % (ip, net, KEEP_IP))
        if KEEP_IP not in d.docker('exec', new, 'cat', '/etc/hosts').stdout.decode():
            raise TestFail('/etc/hosts of the restored container lacks %s' % KEEP_IP)
        nums = wait_w_count(DockerEngine(d), new, len(before) + 3)
        if nums[:len(before)] != before or nums != list(range(1, len(nums) + 1)):
            raise TestFail('the count did not carry on: %s' % nums[-8:])
        keep_ip_refused_on_bridge(ctx, d, br)
    finally:
        remove(d, name, new, br)
        d.docker('network', 'rm', net, check=False)


NATIVE_NS = 'stasis-test'


def ctr(env, *args, check=True, inp=None):
    r = subprocess.run(['ctr', '--namespace', NATIVE_NS] + list(args), env=env, capture_output=True, input=inp,
                       timeout=60)
    if check and r.returncode != 0:
        raise TestFail('ctr %s: %s' % (' '.join(args[:3]), r.stderr.decode(errors='replace')[-300:]))
    return r.stdout.decode(errors='replace')


def ctr_task_pid(env, cid):
    """The pid of task cid when it is RUNNING, else 0."""
    for line in ctr(env, 'tasks', 'ls').splitlines()[1:]:
        f = line.split()
        if len(f) == 3 and f[0] == cid and f[2] == 'RUNNING':
            return int(f[1])
    return 0


def ctr_count(env, cid):
    pid = ctr_task_pid(env, cid)
    if not pid:
        raise TestFail('containerd task %s is not running: %r' % (cid, ctr(env, 'tasks', 'ls')[-300:]))
    with open('/proc/%d/root/data/count' % pid) as f:
        return [int(x) for x in f.read().split()]


def ctr_clean_namespace(env, ref):
    """Every task, container, image and snapshot of NATIVE_NS, then the
    namespace (its content goes with the image, collected shortly after)."""
    for line in ctr(env, 'containers', 'ls', '-q', check=False).split():
        ctr(env, 'tasks', 'rm', '-f', line, check=False)
        ctr(env, 'containers', 'rm', line, check=False)
    ctr(env, 'images', 'rm', ref, check=False)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        snaps = [line.split() for line in ctr(env, 'snapshots', 'ls', check=False).splitlines()[1:]]
        parents = {s[1] for s in snaps if len(s) > 2}
        for s in snaps:
            if s and s[0] not in parents:
                ctr(env, 'snapshots', 'rm', s[0], check=False)
        r = subprocess.run(['ctr', 'namespaces', 'rm', NATIVE_NS], env=env, capture_output=True, timeout=30)
        if r.returncode == 0 or NATIVE_NS not in ctr(env, 'namespaces', 'ls', check=False):
            return
        time.sleep(0.5)
    raise TestFail('containerd namespace %s could not be removed: %s' % (NATIVE_NS, r.stderr[-200:]))


def ctr_failed_restore(ctx, env, cid):
    """A restore from an image whose biggest data file is damaged (found
    once the container is made): exit 1, and no container or snapshot of
    that id is left."""
    dmg = ctx.path('dmg')
    shutil.copytree(ctx.path('img'), dmg)
    data = [f for f in os.listdir(dmg) if not f.endswith('.json')]
    p = os.path.join(dmg, max(data, key=lambda f: os.path.getsize(os.path.join(dmg, f))))
    b = bytearray(open(p, 'rb').read())
    b[len(b) // 3] ^= 0x10
    open(p, 'wb').write(bytes(b))
    r = subprocess.run([ctx.r.stasis, 'restore', '-D', dmg, '--id', cid], env=env, capture_output=True, text=True,
                       timeout=120)
    left = [x for x in (ctr(env, 'containers', 'ls', '-q') + ctr(env, 'snapshots', 'ls')).split() if x == cid]
    if r.returncode != 1 or left:
        raise TestFail('restore of a damaged image: exit %d %r, left: %s' % (r.returncode, r.stderr[-300:], left))


def t_containerd_native(ctx):
    # A task of containerd's own (namespace stasis-test, image imported with
    # ctr), dumped, removed and restored as a new containerd container: the
    # count carries on, ctr shows the task running; a restore under a taken
    # id fails and leaves the running one alone.
    d = dockerd.shared(ctx)
    env = d.containerd_env()
    name, new = 'stasis-n1-%d' % os.getpid(), 'stasis-n2-%d' % os.getpid()
    ref = 'docker.io/library/' + dockerd.IMAGE
    try:
        ctr(env, 'images', 'import', '-', inp=d.docker('save', dockerd.IMAGE).stdout)
        ctr(env, 'run', '-d', '--null-io', ref, name, 'sh', '-c', COUNTER)
        time.sleep(1)
        before = ctr_count(env, name)
        r = stasis(ctx, d, 'dump', '--type', 'containerd', '--namespace', NATIVE_NS, '--id', name,
                   '--address', env['CONTAINERD_ADDRESS'], '-D', ctx.path('img'))
        if r.returncode != 0:
            raise TestFail('containerd dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        ctr(env, 'tasks', 'rm', '-f', name)
        ctr(env, 'containers', 'rm', name)
        r = subprocess.run([ctx.r.stasis, 'restore', '--type', 'containerd', '--namespace', NATIVE_NS, '--address',
                            env['CONTAINERD_ADDRESS'], '-D', ctx.path('img'), '--id', new],
                           env={k: v for k, v in env.items() if k != 'CONTAINERD_ADDRESS'}, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise TestFail('containerd restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        time.sleep(1.5)
        nums = ctr_count(env, new)
        if nums != list(range(1, len(nums) + 1)) or len(nums) < len(before) + 3:
            raise TestFail('containerd restore: the count did not carry on: %s (before: %d)' % (nums[-8:],
                                                                                                len(before)))
        r = subprocess.run([ctx.r.stasis, 'restore', '-D', ctx.path('img'), '--id', new], env=env,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 1 or new not in r.stderr or not ctr_task_pid(env, new):
            raise TestFail('restore under a taken id: exit %d %r' % (r.returncode, r.stderr[-300:]))
        ctr_failed_restore(ctx, env, 'stasis-n3-%d' % os.getpid())
    finally:
        ctr_clean_namespace(env, ref)


# The first Docker test starts the shared dockerd (up to a minute).
TESTS = [
    Test('runc:counter', t_runc, 90),
    Test('runc:unknown-container', t_runc_bad, 30),
    Test('docker:counter', t_docker_counter, 180),
    Test('docker:fidelity', t_docker_fidelity, 180),
    Test('containerd:moby', t_containerd_moby, 150),
    Test('containerd:seed-commands', t_containerd_seed, 150),
    Test('containerd:native', t_containerd_native, 150),
    Test('docker:httpd', t_docker_httpd, 150),
    Test('docker:hostconfig', t_docker_hostconfig, 150),
    Test('docker:keep-ip', t_docker_keep_ip, 180),
]
