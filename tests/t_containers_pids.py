# SPDX-License-Identifier: LGPL-2.1-or-later
"""Containers of many processes and many threads (issue 9): restored as new
containers, every process and thread keeps its pid, which only works when
stasis's own helpers stay off the pids the image needs (DESIGN.md §5a).
Real runc and dockerd, containers built offline from busybox-static; the
helpers come from containers.py. Used by run.py."""
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time

import dockerd
from containers import Containers, make_bundle, remove, runc, stasis
from runner import Test, TestFail as ContainerFail, TestSkip as ContainerSkip

LOOPS = 8

# Each loop learns its own pid (a builtin read of /proc/self/stat runs in
# the subshell itself) and appends "pid count" to its file; pid 1 waits.
MULTI = ('for k in %s; do (read me rest < /proc/self/stat; i=0; while :; do i=$((i+1)); '
         'echo "$me $i" >> /data/c$k; sleep 0.2; done) & done; wait' % ' '.join(str(k) for k in range(1, LOOPS + 1)))

# Four threads, each appending "tid count" to its file.
THREADS_C = r'''
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *count(void *arg)
{
	char path[32];
	snprintf(path, sizeof(path), "/data/t%ld", (long)arg);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	for (long i = 1;; i++) {
		dprintf(fd, "%d %ld\n", gettid(), i);
		usleep(200000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[4];
	for (long k = 0; k < 4; k++)
		pthread_create(&t[k], NULL, count, (void *)(k + 1));
	for (;;)
		pause();
}
'''


def ns_tasks(host_pid):
    """{pid: [tids]} of host_pid and its descendants, as the container's
    pid namespace numbers them (the last NSpid field)."""
    def nspid(path):
        with open(path) as f:
            for line in f:
                if line.startswith('NSpid:'):
                    return int(line.split()[-1])
        raise ContainerFail('no NSpid in %s' % path)

    out, todo = {}, [host_pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir('/proc/%d/task' % p)
            out[nspid('/proc/%d/status' % p)] = sorted(nspid('/proc/%d/task/%s/status' % (p, t)) for t in tids)
            for t in tids:
                with open('/proc/%d/task/%s/children' % (p, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            continue  # gone meanwhile (a loop's sleep)
    return out


def parse_counts(text):
    """'id count' lines -> (set of ids, counts); raises when a count skips."""
    ids, nums = set(), []
    for line in text.split('\n'):
        if line.strip():
            a, b = line.split()
            ids.add(int(a))
            nums.append(int(b))
    return ids, nums


def check_files(files, before, what):
    """files: {name: text} now; before: {name: (ids, count)} at the dump.
    Each file kept its one writer (same pid or tid) and counted on."""
    for name, text in files.items():
        ids, nums = parse_counts(text)
        if nums != list(range(1, len(nums) + 1)):
            raise ContainerFail('%s %s: the count did not carry on: %s' % (what, name, nums[-8:]))
        if len(ids) != 1 or ids != before[name][0]:
            raise ContainerFail('%s %s: written by %s, before the dump by %s' % (what, name, ids, before[name][0]))
        if len(nums) < before[name][1] + 3:
            raise ContainerFail('%s %s: counted only %d after the restore' % (what, name, len(nums) - before[name][1]))


def read_files(d, names):
    return {n: open(os.path.join(d, n)).read() for n in names}


def wait_files(read, names, n, timeout=15):
    end = time.monotonic() + timeout
    while True:
        try:
            files = read()
            if all(len(parse_counts(files[k])[1]) >= n for k in names):
                return files
        except (OSError, KeyError, ValueError):
            pass
        if time.monotonic() > end:
            raise ContainerFail('the container did not write %d lines to each of %s' % (n, ' '.join(names)))
        time.sleep(0.1)


def runc_pid(cid):
    return json.loads(runc('state', cid).stdout)['pid']


def image_tree(img, expect):
    """The manifest's tree, checked to hold what the test made."""
    with open(os.path.join(img, 'manifest.json')) as f:
        tree = json.load(f)['tree']
    err = expect(tree)
    if err:
        raise ContainerFail('the image does not hold the container as made: %s' % err)
    return tree


def at_dump(files):
    """{name: (writer ids, count)} of the files as the dump left them."""
    out = {}
    for name, text in files.items():
        ids, nums = parse_counts(text)
        out[name] = (ids, len(nums))
    return out


def runc_case(ctx, args, names, expect, prepare=None):
    """A runc container running args: dumped, then restored as a new
    container; every pid and tid comes back and each file counts on."""
    cs = Containers(ctx)
    out = open(ctx.path('container.out'), 'ab')
    try:
        bundle = ctx.path('bundle')
        os.mkdir(bundle)
        rootfs = make_bundle(bundle, args)
        if prepare:
            prepare(rootfs)
        data = os.path.join(rootfs, 'data')
        old, new = cs.name('a'), cs.name('b')
        subprocess.run(['runc', 'run', '-d', '--bundle', bundle, old], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, check=True, timeout=30)
        wait_files(lambda: read_files(data, names), names, 3)
        img = ctx.path('img')
        res = ctx.stasis(['dump', '--type', 'runc', '--id', old, '-D', img, '-v', '--log-file', img + '-dump.log'])
        if res.rc != 0:
            raise ContainerFail('dump %s' % res.what())
        tree = image_tree(img, expect)
        before = at_dump(read_files(data, names))
        rc = subprocess.run([ctx.r.stasis, 'restore', '-D', img, '--id', new, '-v', '--log-file',
                             img + '-restore.log'], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            timeout=60).returncode
        if rc != 0:
            raise ContainerFail('restore exit %d: %s' % (rc, open(img + '-restore.log').read()[-400:]))
        check_tasks(tree, ns_tasks(runc_pid(new)))
        files = wait_files(lambda: read_files(data, names), names, max(b[1] for b in before.values()) + 5)
        check_files(files, before, 'runc')
        runc('kill', new, 'KILL')
    finally:
        cs.cleanup()
        out.close()


def check_tasks(tree, now):
    """Every live process and thread of the image's tree is there, under
    its pid and tids (a loop's short-lived sleep may have ended since)."""
    for node in tree:
        if node.get('zombie') or node['comm'] == 'sleep':
            continue
        if node['pid'] not in now:
            raise ContainerFail('pid %d (%s) is not in the restored container: %s' % (node['pid'], node['comm'],
                                                                                     sorted(now)))
        if sorted(node['threads']) != now[node['pid']]:
            raise ContainerFail('pid %d has threads %s, before %s' % (node['pid'], now[node['pid']],
                                                                      sorted(node['threads'])))


def expect_multi(tree):
    # pid 1 and its loops; a loop's child just forked to run sleep is
    # still called sh, and is not one of them.
    shells = [n['pid'] for n in tree if n['comm'] == 'sh' and not n.get('zombie') and 1 in (n['pid'], n['ppid'])]
    return None if len(shells) == LOOPS + 1 else 'shells %s, expected %d' % (shells, LOOPS + 1)


def expect_threads(tree):
    return None if len(tree[0]['threads']) == 5 else 'threads %s, expected 5' % tree[0]['threads']


def t_runc_multi(ctx):
    names = ['c%d' % k for k in range(1, LOOPS + 1)]
    runc_case(ctx, ['sh', '-c', MULTI], names, expect_multi)


def build_threads(ctx, dest):
    if not shutil.which('gcc'):
        raise ContainerSkip('gcc is not installed')
    src = ctx.path('threads.c')
    with open(src, 'w') as f:
        f.write(THREADS_C)
    r = subprocess.run(['gcc', '-static', '-O2', '-pthread', '-o', dest, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise ContainerFail('cannot build the threaded program: %s' % r.stderr[-300:])


def t_runc_threads(ctx):
    names = ['t%d' % k for k in range(1, 5)]
    runc_case(ctx, ['/bin/threads'], names, expect_threads,
              prepare=lambda rootfs: build_threads(ctx, os.path.join(rootfs, 'bin', 'threads')))


def t_docker_multi(ctx):
    d = dockerd.shared(ctx)
    name, new = 'stasis-p1-%d' % os.getpid(), 'stasis-p2-%d' % os.getpid()
    names = ['c%d' % k for k in range(1, LOOPS + 1)]
    script = ' '.join('echo "== %s"; cat /data/%s;' % (n, n) for n in names)

    def read(cid):
        files, cur = {}, None
        for line in d.docker('exec', cid, 'sh', '-c', script).stdout.decode().split('\n'):
            if line.startswith('== '):
                cur = line[3:]
                files[cur] = ''
            elif cur:
                files[cur] += line + '\n'
        return files
    try:
        d.docker('run', '-d', '--name', name, dockerd.IMAGE, 'sh', '-c', MULTI)
        wait_files(lambda: read(name), names, 3)
        img = ctx.path('img')
        r = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file', img + '-dump.log')
        if r.returncode != 0:
            raise ContainerFail('dump exit %d: %s' % (r.returncode, r.stderr[-300:]))
        tree = image_tree(img, expect_multi)
        tar = tarfile.open(fileobj=io.BytesIO(d.docker('cp', name + ':/data', '-').stdout))
        before = at_dump({os.path.basename(m.name): tar.extractfile(m).read().decode()
                          for m in tar.getmembers() if os.path.basename(m.name) in names})
        d.docker('rm', '-f', name)
        r = stasis(ctx, d, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if r.returncode != 0:
            raise ContainerFail('restore exit %d: %s' % (r.returncode, r.stderr[-300:]))
        check_tasks(tree, ns_tasks(d.inspect(new)['State']['Pid']))
        files = wait_files(lambda: read(new), names, max(b[1] for b in before.values()) + 6)
        check_files(files, before, 'docker')
    finally:
        remove(d, name, new)


def import_redis(ctx, d, tag):
    """An image of Debian's redis-server and the libraries ldd names, made
    offline with `docker import` (plus busybox, for docker exec)."""
    server = shutil.which('redis-server')
    if not server:
        raise ContainerSkip('redis-server is not installed (make deps installs it)')
    rootfs = ctx.path('rootfs-redis')
    libs = [w for w in subprocess.run(['ldd', server], capture_output=True, text=True, check=True).stdout.split()
            if w.startswith('/')]
    for path in [server, shutil.which('busybox')] + libs:
        dest = rootfs + path
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(path, dest)
    for d_ in ('data', 'tmp', 'bin'):
        os.makedirs(os.path.join(rootfs, d_), exist_ok=True)
    for a in ('sh', 'cat', 'ls'):
        os.symlink('../usr/bin/busybox', os.path.join(rootfs, 'bin', a))
    d.import_dir(rootfs, tag)


class Resp:
    """A few Redis commands over RESP, pipelined."""

    def __init__(self, ip, timeout=10):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.create_connection((ip, 6379), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > end:
                    raise ContainerFail('redis does not answer at %s' % ip)
                time.sleep(0.1)
        self.buf = b''

    def send(self, *cmds):
        out = []
        for c in cmds:
            out.append(b'*%d\r\n' % len(c) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in
                                                      (x.encode() if isinstance(x, str) else x for x in c)))
        self.s.sendall(b''.join(out))
        return [self.reply() for _ in cmds]

    def line(self):
        while b'\r\n' not in self.buf:
            more = self.s.recv(1 << 16)
            if not more:
                raise ContainerFail('redis closed the connection')
            self.buf += more
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def reply(self):
        line = self.line()
        if line[:1] in (b'+', b':'):
            return line[1:].decode()
        if line[:1] == b'$':
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(1 << 16)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        raise ContainerFail('redis answered %r' % line[:200])

    def close(self):
        self.s.close()


def run_id(r):
    info = r.send(('INFO', 'server'))[0]
    return dict(x.split(':', 1) for x in info.split('\r\n') if ':' in x)['run_id']


KEYS = 20000


def t_docker_redis(ctx):
    d = dockerd.shared(ctx)
    name, new = 'stasis-r1-%d' % os.getpid(), 'stasis-r2-%d' % os.getpid()
    try:
        import_redis(ctx, d, 'stasis-redis:test')
        d.docker('run', '-d', '--name', name, 'stasis-redis:test', '/usr/bin/redis-server', '--io-threads', '2',
                 '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', '/tmp')
        r = Resp(d.inspect(name)['NetworkSettings']['IPAddress'])
        for base in range(0, KEYS, 1000):
            got = r.send(*[('SET', 'key:%d' % i, 'value-%d' % (i * 7)) for i in range(base, base + 1000)])
            if got != ['OK'] * 1000:
                raise ContainerFail('SET answered %r' % [g for g in got if g != 'OK'][:3])
        rid = run_id(r)
        r.close()
        img = ctx.path('img')
        res = stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img, '-v', '--log-file',
                     img + '-dump.log')
        if res.returncode != 0:
            raise ContainerFail('dump exit %d: %s' % (res.returncode, res.stderr[-300:]))
        tree = image_tree(img, lambda t: None if len(t[0]['threads']) > 1 else 'redis has one thread only')
        d.docker('rm', '-f', name)
        res = stasis(ctx, d, 'restore', '-D', img, '--id', new, '-v', '--log-file', img + '-restore.log')
        if res.returncode != 0:
            raise ContainerFail('restore exit %d: %s' % (res.returncode, res.stderr[-300:]))
        check_tasks(tree, ns_tasks(d.inspect(new)['State']['Pid']))
        r = Resp(d.inspect(new)['NetworkSettings']['IPAddress'])
        if r.send(('DBSIZE',))[0] != str(KEYS):
            raise ContainerFail('the restored redis holds %s keys, not %d' % (r.send(('DBSIZE',))[0], KEYS))
        sample = list(range(0, KEYS, 997)) + [KEYS - 1]
        got = r.send(*[('GET', 'key:%d' % i) for i in sample])
        if got != ['value-%d' % (i * 7) for i in sample]:
            raise ContainerFail('the restored redis answers other values: %r' % got[:3])
        if run_id(r) != rid:
            raise ContainerFail('run_id changed: the restored redis is not the same process')
        if r.send(('SET', 'after', 'restore'), ('GET', 'after')) != ['OK', 'restore']:
            raise ContainerFail('the restored redis does not take new writes')
        r.close()
    finally:
        remove(d, name, new)
        d.docker('rmi', 'stasis-redis:test', check=False)


TESTS = [
    Test('runc:pids:9-processes', t_runc_multi, 90),
    Test('runc:pids:threads', t_runc_threads, 90),
    Test('docker:pids:9-processes', t_docker_multi, 150),
    Test('docker:pids:redis', t_docker_redis, 150),
]
