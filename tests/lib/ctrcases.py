# SPDX-License-Identifier: LGPL-2.1-or-later
"""The container scenarios of issue 9, written once for any engine
(engines.py: Docker, containerd's moby namespace, Podman), and what they
check with: a shell with eight background loops (nine processes, each on
its dumped pid, each counting on) and a Redis server with two I/O threads
and 20,000 keys (all there, same run_id: the same process). The runc tests
(t_containers_pids.py) and bench/containers.py use the helpers too."""
import json
import os
import shutil
import socket
import subprocess
import time

from runner import TestFail, TestSkip

LOOPS = 8
LOOP_FILES = ['c%d' % k for k in range(1, LOOPS + 1)]

# Each loop learns its own pid (a builtin read of /proc/self/stat runs in
# the subshell itself) and appends "pid count" to its file; pid 1 waits.
MULTI = ('for k in %s; do (read me rest < /proc/self/stat; i=0; while :; do i=$((i+1)); '
         'echo "$me $i" >> /data/c$k; sleep 0.2; done) & done; wait' % ' '.join(str(k) for k in range(1, LOOPS + 1)))


# --- processes and the files they count in ------------------------------
def ns_tasks(host_pid):
    """{pid: [tids]} of host_pid and its descendants, as the container's
    pid namespace numbers them (the last NSpid field)."""
    def nspid(path):
        with open(path) as f:
            for line in f:
                if line.startswith('NSpid:'):
                    return int(line.split()[-1])
        raise TestFail('no NSpid in %s' % path)

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
    """'id count' lines -> (set of ids, counts)."""
    ids, nums = set(), []
    for line in text.split('\n'):
        if line.strip():
            a, b = line.split()
            ids.add(int(a))
            nums.append(int(b))
    return ids, nums


def at_dump(files):
    """{name: (writer ids, count)} of the files as the dump left them."""
    out = {}
    for name, text in files.items():
        ids, nums = parse_counts(text)
        out[name] = (ids, len(nums))
    return out


def check_files(files, before, what):
    """files: {name: text} now; before: at_dump() of them at the dump.
    Each file kept its one writer (same pid or tid) and counted on."""
    for name, text in files.items():
        ids, nums = parse_counts(text)
        if nums != list(range(1, len(nums) + 1)):
            raise TestFail('%s %s: the count did not carry on: %s' % (what, name, nums[-8:]))
        if len(ids) != 1 or ids != before[name][0]:
            raise TestFail('%s %s: written by %s, before the dump by %s' % (what, name, ids, before[name][0]))
        if len(nums) < before[name][1] + 3:
            raise TestFail('%s %s: counted only %d after the restore' % (what, name, len(nums) - before[name][1]))


def wait_files(read, names, n, timeout=15):
    """read() -> {name: text}, retried until each file has n lines."""
    end = time.monotonic() + timeout
    while True:
        try:
            files = read()
            if all(len(parse_counts(files[k])[1]) >= n for k in names):
                return files
        except (OSError, KeyError, ValueError, TestFail):
            pass
        if time.monotonic() > end:
            raise TestFail('the container did not write %d lines to each of %s' % (n, ' '.join(names)))
        time.sleep(0.1)


def image_tree(img, expect):
    """The manifest's tree, checked by expect(tree) -> None or what is wrong."""
    with open(os.path.join(img, 'manifest.json')) as f:
        tree = json.load(f)['tree']
    err = expect(tree)
    if err:
        raise TestFail('the image does not hold the container as made: %s' % err)
    return tree


def transient(tree, node):
    """A loop's child, forked to run sleep: caught as `sleep`, as `sh`
    between fork and exec, or as `exe` while busybox re-executes itself;
    it ends within 0.2 s, so the restored one may be gone already. A
    leaf whose parent is a shell other than pid 1 (pid 1's children are
    the loops themselves, which must all be there)."""
    if node['comm'] == 'sleep':
        return True
    parent = next((n for n in tree if n['pid'] == node['ppid']), None)
    leaf = not any(n['ppid'] == node['pid'] for n in tree)
    return leaf and parent is not None and parent['comm'] == 'sh' and parent['pid'] != 1 and node['ppid'] != 0


def check_tasks(tree, now):
    """Every live process and thread of the image's tree is there, under
    its pid and tids (a loop's short-lived child may have ended since)."""
    for node in tree:
        if node.get('zombie') or transient(tree, node):
            continue
        if node['pid'] not in now:
            raise TestFail('pid %d (%s) is not in the restored container: %s' % (node['pid'], node['comm'],
                                                                                sorted(now)))
        if sorted(node['threads']) != now[node['pid']]:
            raise TestFail('pid %d has threads %s, before %s' % (node['pid'], now[node['pid']],
                                                                 sorted(node['threads'])))


def expect_multi(tree):
    # pid 1 and its loops; a loop's child just forked to run sleep is
    # still called sh, and is not one of them.
    shells = [n['pid'] for n in tree if n['comm'] == 'sh' and not n.get('zombie') and 1 in (n['pid'], n['ppid'])]
    return None if len(shells) == LOOPS + 1 else 'shells %s, expected %d' % (shells, LOOPS + 1)


def exec_files(eng, cid, names):
    """{name: text} of /data/NAME in the container, through one exec."""
    script = ' '.join('echo "== %s"; cat /data/%s;' % (n, n) for n in names)
    files, cur = {}, None
    for line in eng.exec(cid, 'sh', '-c', script).split('\n'):
        if line.startswith('== '):
            cur = line[3:]
            files[cur] = ''
        elif cur:
            files[cur] += line + '\n'
    return files


def multi_case(ctx, eng):
    """The shell with eight background loops, dumped, removed and restored
    as a new container: all nine processes on their pids, each counting on."""
    name, new = 'stasis-m1-%d' % os.getpid(), 'stasis-m2-%d' % os.getpid()
    try:
        eng.run(name, eng.busybox, 'sh', '-c', MULTI)
        wait_files(lambda: exec_files(eng, name, LOOP_FILES), LOOP_FILES, 3)
        img = ctx.path('img')
        eng.dump(ctx, name, img)
        tree = image_tree(img, expect_multi)
        tar = eng.cp_tar(name, '/data')
        before = at_dump({os.path.basename(m.name): tar.extractfile(m).read().decode()
                          for m in tar.getmembers() if os.path.basename(m.name) in LOOP_FILES})
        eng.remove(name)
        eng.restore(ctx, img, new)
        check_tasks(tree, ns_tasks(eng.pid(new)))
        files = wait_files(lambda: exec_files(eng, new, LOOP_FILES), LOOP_FILES,
                           max(b[1] for b in before.values()) + 6)
        check_files(files, before, eng.name)
    finally:
        eng.remove(name, new)


# --- Redis ----------------------------------------------------------------
KEYS = 20000
REDIS_IMAGE = 'stasis-redis:test'
REDIS_ARGS = ('/usr/bin/redis-server', '--io-threads', '2', '--bind', '0.0.0.0', '--protected-mode', 'no',
              '--save', '', '--appendonly', 'no', '--dir', '/tmp')


def redis_rootfs(rootfs):
    """A root file system of Debian's redis-server and the libraries ldd
    names (plus busybox, for exec), to import offline as an image."""
    server = shutil.which('redis-server')
    if not server or not shutil.which('busybox'):
        raise TestSkip('redis-server or busybox is not installed (make deps installs them)')
    libs = [w for w in subprocess.run(['ldd', server], capture_output=True, text=True, check=True).stdout.split()
            if w.startswith('/')]
    for path in [server, shutil.which('busybox')] + libs:
        dest = rootfs + path
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(path, dest)
    for d in ('data', 'tmp', 'bin'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    for a in ('sh', 'cat', 'ls'):
        os.symlink('../usr/bin/busybox', os.path.join(rootfs, 'bin', a))


def import_redis(ctx, eng, tag=REDIS_IMAGE):
    rootfs = ctx.path('rootfs-redis')
    redis_rootfs(rootfs)
    eng.import_dir(rootfs, tag)
    shutil.rmtree(rootfs, ignore_errors=True)


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
                    raise TestFail('redis does not answer at %s' % ip)
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
                raise TestFail('redis closed the connection')
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
        raise TestFail('redis answered %r' % line[:200])

    def close(self):
        self.s.close()


def run_id(r):
    info = r.send(('INFO', 'server'))[0]
    return dict(x.split(':', 1) for x in info.split('\r\n') if ':' in x)['run_id']


def redis_fill(ip):
    """KEYS keys into the Redis at ip; returns its run_id."""
    r = Resp(ip)
    for base in range(0, KEYS, 1000):
        got = r.send(*[('SET', 'key:%d' % i, 'value-%d' % (i * 7)) for i in range(base, base + 1000)])
        if got != ['OK'] * 1000:
            raise TestFail('SET answered %r' % [g for g in got if g != 'OK'][:3])
    rid = run_id(r)
    r.close()
    return rid


def redis_check(ip, rid):
    """The Redis at ip holds what redis_fill wrote, is the process of run_id
    rid, and takes new writes."""
    r = Resp(ip)
    n = r.send(('DBSIZE',))[0]
    if n != str(KEYS):
        raise TestFail('the restored redis holds %s keys, not %d' % (n, KEYS))
    sample = list(range(0, KEYS, 997)) + [KEYS - 1]
    got = r.send(*[('GET', 'key:%d' % i) for i in sample])
    if got != ['value-%d' % (i * 7) for i in sample]:
        raise TestFail('the restored redis answers other values: %r' % got[:3])
    if run_id(r) != rid:
        raise TestFail('run_id changed: the restored redis is not the same process')
    if r.send(('SET', 'after', 'restore'), ('GET', 'after')) != ['OK', 'restore']:
        raise TestFail('the restored redis does not take new writes')
    r.close()


def redis_case(ctx, eng):
    """Redis with --io-threads 2 and KEYS keys, dumped, removed and restored
    as a new container: every thread on its tid, the keys there, the same
    run_id. Imports REDIS_IMAGE into the engine and removes it."""
    name, new = 'stasis-r1-%d' % os.getpid(), 'stasis-r2-%d' % os.getpid()
    try:
        import_redis(ctx, eng)
        eng.run(name, REDIS_IMAGE, *REDIS_ARGS)
        rid = redis_fill(eng.ip(name))
        img = ctx.path('img')
        eng.dump(ctx, name, img)
        tree = image_tree(img, lambda t: None if len(t[0]['threads']) > 1 else 'redis has one thread only')
        eng.remove(name)
        eng.restore(ctx, img, new)
        check_tasks(tree, ns_tasks(eng.pid(new)))
        redis_check(eng.ip(new), rid)
        if eng.restarts_afresh:
            redis_restarted(eng, new, rid)
    finally:
        eng.remove(name, new)
        eng.rmi(REDIS_IMAGE)


def redis_restarted(eng, cid, rid):
    """A restart of the restored container runs Redis afresh: a new run_id
    and an empty store (the test's Redis saves nothing to disk)."""
    eng.cli('restart', '-t', '1', cid)
    r = Resp(eng.ip(cid))
    try:
        if run_id(r) == rid:
            raise TestFail('after restart the run_id is the restored process\'s: it did not start afresh')
        if r.send(('DBSIZE',))[0] != '0':
            raise TestFail('after restart redis still holds keys: it did not start afresh')
    finally:
        r.close()


# --- configuration fidelity -------------------------------------------------
# The counter the fidelity and --keep-ip cases run: it counts into /w, a
# directory of the writable layer, and prints a tick per count for the logs.
W_COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> /w/count; echo tick $i; sleep 0.2; done'
SEC = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters|Uid|Gid):" /proc/1/status'


def pick(insp, key):
    for k in key:
        insp = insp.get(k) if isinstance(insp, dict) else None
    return insp


def same_config(eng, name, old, fields):
    """The inspect record's fields (key paths) are the original's."""
    now = eng.inspect(name)
    diff = ['%s: %r, not %r' % ('.'.join(k), pick(now, k), pick(old, k)) for k in fields
            if pick(now, k) != pick(old, k)]
    if diff:
        raise TestFail('the restored container %s differs: %s' % (name, '; '.join(diff)))


def w_count(eng, name):
    r = eng.cli('exec', name, 'cat', '/w/count', check=False)
    return [int(x) for x in r.stdout.decode().split()] if r.returncode == 0 else []


def wait_w_count(eng, name, n, timeout=10):
    end = time.monotonic() + timeout
    while len(w_count(eng, name)) < n:
        if time.monotonic() > end:
            raise TestFail('%s counted to %d only' % (name, len(w_count(eng, name))))
        time.sleep(0.2)
    return w_count(eng, name)


def fidelity_cycle(ctx, eng, name, new, img, old, fields):
    """Dumps container name and restores it as new: the count carries on,
    the configuration and the process's credentials are the original's,
    and the file the container changed and its executable are its own."""
    before = wait_w_count(eng, name, 3)
    eng.dump(ctx, name, img)
    eng.remove(name)
    eng.restore(ctx, img, new)
    nums = wait_w_count(eng, new, len(before) + 3)
    if nums != list(range(1, len(nums) + 1)):
        raise TestFail('%s: the count did not carry on: %s' % (new, nums[-8:]))
    same_config(eng, new, old, fields)
    sec = eng.cli('exec', new, 'sh', '-c', SEC).stdout
    if sec != old['sec']:
        raise TestFail('%s: credentials, capabilities or seccomp differ: %r vs %r' % (new, sec, old['sec']))
    if eng.cli('exec', new, 'sh', '-c', 'test -f /bin/sh -a ! -L /bin/sh && busybox cmp /bin/sh /bin/busybox',
               check=False).returncode != 0:
        raise TestFail('%s: /bin/sh is not the copy the container made' % new)
    exe = eng.exec(new, 'ls', '-l', '/proc/1/exe').strip()
    if not exe.endswith('-> /bin/busybox'):
        raise TestFail('%s: the restored process\'s executable is not the original: %r' % (new, exe))


def counted_afresh(nums, since):
    """The counter began at 1 again after index since."""
    return any(nums[i:i + 3] == [1, 2, 3] for i in range(since, len(nums)))


def starts_afresh(eng, name, how):
    """After `restart` (or stop and start) the original command runs again
    from its start: the counter begins at 1 again, in the same file."""
    n = len(w_count(eng, name))
    if how == 'restart':
        eng.cli('restart', '-t', '1', name)
    else:
        eng.cli('stop', '-t', '1', name)
        if eng.running(name):
            raise TestFail('%s stop did not stop %s' % (eng.name, name))
        eng.cli('start', name)
    end = time.monotonic() + 10
    while not counted_afresh(w_count(eng, name), n):
        if time.monotonic() > end:
            st = eng.inspect(name)['State']
            raise TestFail('after %s %s, %s does not count afresh: %s; it is %s (exit %s %r), logs end %r' % (
                eng.name, how, name, w_count(eng, name)[n:n + 8], st['Status'], st['ExitCode'], st['Error'],
                eng.cli('logs', name).stderr[-200:]))
        time.sleep(0.2)
    if 'tick 1' not in eng.cli('logs', name).stdout.decode().split('\n'):
        raise TestFail('after %s %s, the logs of %s lack a new "tick 1"' % (eng.name, how, name))


def fidelity_case(ctx, eng, start, fields, tag):
    """A container started by start(name) with a user, capabilities and
    limits of its own is restored twice (the restored one dumped again);
    it keeps its configuration (fields of its inspect record), and
    restart, stop and start run the original command afresh."""
    names = ['stasis-%s%d-%d' % (tag, i, os.getpid()) for i in range(3)]
    try:
        start(names[0])
        wait_w_count(eng, names[0], 2)
        # The command's own file in the writable layer: /bin/sh becomes a
        # copy of busybox instead of the image's link to it (the restore
        # must put the stub there and give the copy back).
        eng.cli('exec', '--user', '0', names[0], 'sh', '-c', 'cp /bin/busybox /bin/sh.new && mv /bin/sh.new /bin/sh')
        old = eng.inspect(names[0])
        old['sec'] = eng.cli('exec', names[0], 'sh', '-c', SEC).stdout
        fidelity_cycle(ctx, eng, names[0], names[1], ctx.path('img1'), old, fields)
        fidelity_cycle(ctx, eng, names[1], names[2], ctx.path('img2'), old, fields)
        starts_afresh(eng, names[2], 'restart')
        same_config(eng, names[2], old, fields)
        starts_afresh(eng, names[2], 'stop')
    finally:
        eng.remove(*names)
