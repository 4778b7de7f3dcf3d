# SPDX-License-Identifier: LGPL-2.1-or-later
"""Container tests (issue 4): real runc containers built offline from the
busybox-static binary, dumped and restored as new containers. Each test
names its containers after its own pid and removes them, pass or fail.
Used by run.py."""
import io
import json
import os
import shutil
import subprocess
import tarfile
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


class Dockerd:
    """A dockerd of our own (own data and exec roots, own socket), started
    for the tests and stopped by its pid. Images are built offline with
    `docker import` of a busybox root filesystem."""

    def __init__(self, ctx):
        if not shutil.which('dockerd') or not shutil.which('docker'):
            raise ContainerSkip('docker.io is not installed (make deps installs it)')
        # Short paths: containerd's sockets live under exec-root.
        self.root = '/run/stasis-test-docker-%d' % os.getpid()
        os.makedirs(self.root, exist_ok=True)
        self.sock = os.path.join(self.root, 'docker.sock')
        self.env = dict(os.environ, DOCKER_HOST='unix://' + self.sock)
        self.log = open(ctx.path('dockerd.log'), 'ab')
        self.p = subprocess.Popen(['dockerd', '--data-root', os.path.join(self.root, 'data'), '--exec-root',
                                   os.path.join(self.root, 'exec'), '--pidfile', os.path.join(self.root, 'pid'),
                                   '-H', 'unix://' + self.sock], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True)
        end = time.monotonic() + 60
        while self.docker('version', check=False).returncode != 0:
            if self.p.poll() is not None or time.monotonic() > end:
                self.stop()
                raise ContainerFail('dockerd did not come up (see %s)' % ctx.path('dockerd.log'))
            time.sleep(0.2)

    def docker(self, *args, check=True, inp=None, timeout=60):
        r = subprocess.run(['docker'] + list(args), env=self.env, capture_output=True, input=inp, timeout=timeout)
        if check and r.returncode != 0:
            raise ContainerFail('docker %s: %s' % (' '.join(args[:3]), r.stderr.decode(errors='replace')[-300:]))
        return r

    def inspect(self, cid):
        return json.loads(self.docker('inspect', cid).stdout)[0]

    def import_busybox(self, ctx, tag):
        rootfs = ctx.path('rootfs-' + tag.replace(':', '_'))
        os.makedirs(os.path.join(rootfs, 'bin'))
        os.makedirs(os.path.join(rootfs, 'data'))
        shutil.copy(shutil.which('busybox'), os.path.join(rootfs, 'bin', 'busybox'))
        for a in ('sh', 'sleep', 'echo', 'cat', 'ls', 'rm', 'httpd', 'wget', 'hostname', 'grep', 'mkdir'):
            os.symlink('busybox', os.path.join(rootfs, 'bin', a))
        with open(os.path.join(rootfs, 'data', 'fromimage'), 'w') as f:
            f.write('in the image\n')
        tar = subprocess.run(['tar', '-C', rootfs, '-c', '.'], capture_output=True, check=True).stdout
        self.docker('import', '-', tag, inp=tar)

    def stop(self):
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


def stasis(ctx, d, *args):
    return subprocess.run([ctx.r.stasis] + list(args), env=d.env, capture_output=True, text=True, timeout=120)


def t_docker(ctx):
    d = Dockerd(ctx)
    try:
        d.import_busybox(ctx, 'stasis-busybox:test')
        name, new = 'stasis-c1-%d' % os.getpid(), 'stasis-c2-%d' % os.getpid()
        d.docker('run', '-d', '--name', name, '--tmpfs', '/scratch', 'stasis-busybox:test', 'sh', '-c', COUNTER)
        d.docker('exec', name, 'sh', '-c', 'while [ ! -s /data/count ]; do sleep 0.1; done; '
                 'echo made > /data/made; rm /data/fromimage; echo in-tmpfs > /scratch/t')
        old = d.inspect(name)
        sec = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters|Uid|Gid):" /proc/1/status'
        sec_before = d.docker('exec', name, 'sh', '-c', sec).stdout
        img = ctx.path('img')
        # Bad input first: unknown container, daemon unreachable.
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', 'stasis-nope', '-D', ctx.path('x'))
        if r.returncode != 1 or 'stasis-nope' not in r.stderr:
            raise ContainerFail('dump of an unknown container: exit %d %r' % (r.returncode, r.stderr))
        bad = dict(d.env, DOCKER_HOST='unix://' + ctx.path('no-daemon.sock'))
        r = subprocess.run([ctx.r.stasis, 'dump', '--type', 'docker', '--id', name, '-D', ctx.path('y')], env=bad,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 1 or 'dockerd running' not in r.stderr:
            raise ContainerFail('dump without a daemon: exit %d %r' % (r.returncode, r.stderr))
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file', img + '-dump.log')
        if r.returncode != 0:
            raise ContainerFail('dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        end = time.monotonic() + 10
        while d.inspect(name)['State']['Running']:
            if time.monotonic() > end:
                raise ContainerFail('the dumped container still runs')
            time.sleep(0.1)
        tar = tarfile.open(fileobj=io.BytesIO(d.docker('cp', name + ':/data/count', '-').stdout))
        before = tar.extractfile(tar.getmembers()[0]).read().decode()
        d.docker('rm', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise ContainerFail('restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        now = d.inspect(new)
        if not now['State']['Running']:
            raise ContainerFail('the restored container is not running')
        if new not in d.docker('ps', '--format', '{{.Names}}').stdout.decode():
            raise ContainerFail('docker ps does not show %s' % new)
        time.sleep(1.5)
        count = d.docker('exec', new, 'cat', '/data/count').stdout.decode().split()
        nums = [int(x) for x in count]
        if nums != list(range(1, len(nums) + 1)) or len(nums) < len(before.split()) + 3:
            raise ContainerFail('the count did not carry on: %s' % nums[-8:])
        if d.docker('exec', new, 'cat', '/scratch/t').stdout.decode().strip() != 'in-tmpfs':
            raise ContainerFail('the tmpfs content is lost')
        if d.docker('exec', new, 'sh', '-c', sec).stdout != sec_before:
            raise ContainerFail('credentials, capabilities or seccomp differ: %r vs %r'
                                % (d.docker('exec', new, 'sh', '-c', sec).stdout, sec_before))
        if d.docker('exec', new, 'cat', '/data/made').stdout.decode().strip() != 'made':
            raise ContainerFail('the file the container made is gone')
        if d.docker('exec', new, 'ls', '/data/fromimage', check=False).returncode == 0:
            raise ContainerFail('the file the container deleted from the image is back')
        if d.docker('exec', new, 'ls', '-a', '/').stdout.decode().count('stasis'):
            raise ContainerFail('a stasis file is visible in the restored container')
        host = d.docker('exec', new, 'cat', '/etc/hostname').stdout.decode().strip()
        if host != now['Config']['Hostname'] or host == old['Config']['Hostname']:
            raise ContainerFail('/etc/hostname is %r, not the new container\'s %r' % (host, now['Config']['Hostname']))
        hosts = d.docker('exec', new, 'cat', '/etc/hosts').stdout.decode()
        ip = now['NetworkSettings']['IPAddress']
        if not ip or ip not in hosts:
            raise ContainerFail('/etc/hosts does not hold the new address %r' % ip)
        logs = d.docker('logs', new).stdout.decode().split('\n')
        last = int(before.split()[-1])
        if 'tick %d' % (last + 2) not in logs:
            raise ContainerFail('docker logs lacks output written after the restore: %r' % logs[-3:])
        # Sandbox creation that fails (the name is taken): one clear error,
        # nothing new left behind.
        n_before = len(d.docker('ps', '-aq').stdout.split())
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
        if r.returncode != 1 or 'docker create' not in r.stderr:
            raise ContainerFail('restore under a taken name: exit %d %r' % (r.returncode, r.stderr))
        if len(d.docker('ps', '-aq').stdout.split()) != n_before:
            raise ContainerFail('a failed restore left a container behind')
        d.docker('stop', '-t', '1', new)
        if d.inspect(new)['State']['Running']:
            raise ContainerFail('docker stop did not stop the restored container')
        d.docker('rm', new)
        t_containerd_moby(ctx, d)
        t_httpd(ctx, d)
        # A missing image is one clear error, and no container is left.
        d.docker('rmi', 'stasis-busybox:test')
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
        if r.returncode != 1 or 'stasis-busybox:test' not in r.stderr:
            raise ContainerFail('restore without the image: exit %d %r' % (r.returncode, r.stderr))
        if d.docker('ps', '-aq').stdout.strip():
            raise ContainerFail('a failed restore left a container behind')
    finally:
        d.stop()


def t_containerd_moby(ctx, d):
    # The same container, found through containerd (Docker's namespace).
    name, new = 'stasis-c3-%d' % os.getpid(), 'stasis-c4-%d' % os.getpid()
    d.docker('run', '-d', '--name', name, 'stasis-busybox:test', 'sh', '-c', COUNTER)
    full = d.inspect(name)['Id']
    time.sleep(1)
    # dockerd runs its own containerd unless a system one is there.
    sock = os.path.join(d.root, 'exec', 'containerd', 'containerd.sock')
    if not os.path.exists(sock):
        sock = '/run/containerd/containerd.sock'
    env = dict(d.env, CONTAINERD_ADDRESS=sock)
    img = ctx.path('img-containerd')
    tasks = subprocess.run(['ctr', '--namespace', 'moby', 'task', 'ls'], env=env, capture_output=True, text=True)
    if full not in tasks.stdout:
        raise ContainerFail('ctr task ls does not show the container: %r' % tasks.stdout[-200:])
    r = subprocess.run([ctx.r.stasis, 'dump', '--type', 'containerd', '--namespace', 'moby', '--id', full, '-D', img],
                       env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise ContainerFail('containerd dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
    d.docker('rm', '-f', name)
    r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
    if r.returncode != 0:
        raise ContainerFail('restore of the containerd image exit %d: %s' % (r.returncode, r.stderr[-300:]))
    full_new = d.inspect(new)['Id']
    tasks = subprocess.run(['ctr', '--namespace', 'moby', 'task', 'ls'], env=env, capture_output=True, text=True)
    if full_new not in tasks.stdout or 'RUNNING' not in tasks.stdout:
        raise ContainerFail('ctr task ls does not show the restored task running: %r' % tasks.stdout[-300:])
    time.sleep(1)
    nums = [int(x) for x in d.docker('exec', new, 'cat', '/data/count').stdout.decode().split()]
    if nums != list(range(1, len(nums) + 1)):
        raise ContainerFail('containerd restore: the count did not carry on: %s' % nums[-8:])
    d.docker('rm', '-f', new)


def http_get(ip, timeout=5):
    import urllib.request
    with urllib.request.urlopen('http://%s/index.html' % ip, timeout=timeout) as f:
        return f.read().decode()


def t_httpd(ctx, d):
    # A server answers a new request after restore with what it held before.
    name, new = 'stasis-h1-%d' % os.getpid(), 'stasis-h2-%d' % os.getpid()
    secret = 'written in the container %d' % time.monotonic_ns()
    d.docker('run', '-d', '--name', name, 'stasis-busybox:test', 'sh', '-c',
             'mkdir -p /www && echo "%s" > /www/index.html && exec httpd -f -p 80 -h /www' % secret)
    ip = d.inspect(name)['NetworkSettings']['IPAddress']
    end = time.monotonic() + 10
    while True:
        try:
            if secret in http_get(ip):
                break
        except OSError:
            pass
        if time.monotonic() > end:
            raise ContainerFail('httpd in the container does not answer at %s' % ip)
        time.sleep(0.1)
    img = ctx.path('img-httpd')
    r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img)
    if r.returncode != 0:
        raise ContainerFail('httpd dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
    d.docker('rm', '-f', name)
    r = stasis(ctx, d, 'restore', '-D', img, '--id', new)
    if r.returncode != 0:
        raise ContainerFail('httpd restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
    ip2 = d.inspect(new)['NetworkSettings']['IPAddress']
    got = http_get(ip2)
    if secret not in got:
        raise ContainerFail('the restored httpd at %s answered %r' % (ip2, got[:200]))
    d.docker('rm', '-f', new)


TESTS.append(('docker:counter+containerd+httpd', t_docker, 300))
