# SPDX-License-Identifier: LGPL-2.1-or-later
"""Established TCP connections kept with --tcp-established (engine/sk-tcp.c).

Loopback connections with both ends in the tree are zdtm:tcp_established
(tests/zdtm/tcp_established.c). Here: connections to a peer outside the
tree, in a network namespace of the test's own behind a veth pair (Redis
with a client sending INCR every 10 ms; 1 MiB queued each way), failures
and refusals, FIN_WAIT2, inspect (the peer's FIN: t_tcp_fin.py).

The peer must not get a reset between the kill and the restore: that is
stasis's own network lock (engine/netlock.c), taken at the freeze, handed
to the image by the dump and removed by the restore; the tests add no rule
of their own, and check that no table of stasis is left afterwards."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import stasistest as st
from runner import Test, TestFail, TestSkip
from checks import expect_refused_unharmed


def sh(*args, check=True, ns=None, inp=None):
    argv = (['ip', 'netns', 'exec', ns] if ns else []) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, input=inp, timeout=30)
    if check and p.returncode != 0:
        raise TestFail('%s: %s' % (' '.join(argv), p.stderr.strip() or p.stdout.strip()))
    return p.stdout


class Net:
    """A network namespace joined to ours by a veth pair: we are .1, it .2
    (and fd00:N::1 / ::2). Removed by close(), pass or fail."""

    def __init__(self, ctx):
        for tool in ('ip', 'nft'):
            if not shutil.which(tool):
                raise TestSkip('%s is not installed (make deps installs iproute2 and nftables)' % tool)
        n = os.getpid() % 200 + 20
        self.ns, self.veth = 'stasis-tcp-%d' % os.getpid(), 'stt%d' % os.getpid()
        self.ip, self.peer = '10.%d.77.1' % n, '10.%d.77.2' % n
        self.ip6, self.peer6 = 'fd00:%d::1' % n, 'fd00:%d::2' % n
        self.made = False
        sh('ip', 'netns', 'add', self.ns)
        self.made = True
        sh('ip', 'link', 'add', self.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.ns)
        sh('ip', 'addr', 'add', self.ip + '/24', 'dev', self.veth)
        sh('ip', '-6', 'addr', 'add', self.ip6 + '/64', 'dev', self.veth, 'nodad')
        sh('ip', 'link', 'set', self.veth, 'up')
        sh('ip', 'addr', 'add', self.peer + '/24', 'dev', 'eth0', ns=self.ns)
        sh('ip', '-6', 'addr', 'add', self.peer6 + '/64', 'dev', 'eth0', 'nodad', ns=self.ns)
        sh('ip', 'link', 'set', 'eth0', 'up', ns=self.ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.ns)

    def close(self):
        if self.made:
            sh('ip', 'netns', 'del', self.ns, check=False)  # takes the veth pair with it
        sh('ip', 'link', 'del', self.veth, check=False)
        self.made = False


def image_table(img):
    """The network lock the dump handed over to the image, if it is still
    in the ruleset (other tests of the machine may hold locks of theirs)."""
    with open(os.path.join(img, 'manifest.json')) as f:
        name = (json.load(f).get('netlock') or {}).get('table')
    out = sh('nft', 'list', 'tables', check=False)
    return name if name and ('table inet %s' % name) in out.splitlines() else None


class Proc:
    """A process we start (in the namespace when ns), killed at the end."""

    def __init__(self, ctx, name, argv, ns=None):
        self.log = open(ctx.path(name + '.log'), 'ab')
        self.p = subprocess.Popen((['ip', 'netns', 'exec', ns] if ns else []) + argv, cwd=ctx.workdir,
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                  start_new_session=True, close_fds=True)
        self.pid = self.p.pid

    def stop(self):
        for pid in set(st.tree_info(self.pid)) | {self.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.p.poll() is None:
            self.p.kill()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


def wait_file(path, what, timeout=20, pred=lambda s: True):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path) as f:
                s = f.read()
            if pred(s):
                return s
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise TestFail('%s: %s not there after %d s' % (what, os.path.basename(path), timeout))


def dump_kill_restore(ctx, pid, proc, net, port, extra=()):
    """Dump with --tcp-established (the tree is killed), restore at once."""
    img = ctx.path('img')
    ctx.dump(pid, img, extra=['--tcp-established'] + list(extra))
    if proc:
        proc.p.wait(10)
    if not st.pid_gone(pid, 5):
        raise TestFail('pid %d is still there after the dump' % pid)
    if not image_table(img):
        raise TestFail('no network lock handed over to the image between the dump and the restore')
    _, got, _ = ctx.restore(img, extra=['--tcp-established'])
    if got != pid:
        raise TestFail('restore gave pid %s, expected %d' % (got, pid))
    left = image_table(img)
    if left:
        raise TestFail('after the restore, the lock %s is left in the ruleset' % left)
    return img


# --- Redis with a client in another namespace -----------------------------

REDIS_CLIENT = r'''
import json, os, socket, sys, time
host, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {'errors': [], 'sent': 0, 'first': None, 'last': None}
s = socket.create_connection((host, port), timeout=120)
f = s.makefile('rb')
def cmd(*a):
    s.sendall(b''.join([b'*%d\r\n' % len(a)] + [b'$%d\r\n%s\r\n' % (len(x), x) for x in a]))
    return f.readline()
try:
    res['port'] = s.getsockname()[1]
    res['id0'] = int(cmd(b'CLIENT', b'ID')[1:])
    while not os.path.exists(os.path.join(d, 'stop')):
        r = cmd(b'INCR', b'stasis:counter')
        if not r.startswith(b':'):
            raise RuntimeError('reply %r' % r)
        v = int(r[1:])
        if res['last'] is not None and v != res['last'] + 1:
            res['errors'].append('gap: %d then %d' % (res['last'], v))
        res['first'] = v if res['first'] is None else res['first']
        res['last'], res['sent'] = v, res['sent'] + 1
        with open(os.path.join(d, 'progress.tmp'), 'w') as p:
            p.write('%d\n' % res['sent'])
        os.rename(os.path.join(d, 'progress.tmp'), os.path.join(d, 'progress'))
        time.sleep(0.01)
    res['id1'] = int(cmd(b'CLIENT', b'ID')[1:])
    res['port1'] = s.getsockname()[1]
except Exception as e:
    res['errors'].append(repr(e))
with open(os.path.join(d, 'result.tmp'), 'w') as o:
    json.dump(res, o)
os.rename(os.path.join(d, 'result.tmp'), os.path.join(d, 'result'))
'''


def redis_cli(port, *args):
    return sh('redis-cli', '-h', '127.0.0.1', '-p', str(port), *args)


def client_list_id(port, addr):
    for line in redis_cli(port, 'CLIENT', 'LIST').splitlines():
        if ' addr=%s ' % addr in ' ' + line + ' ':
            return int(re.search(r'\bid=(\d+)', line).group(1))
    return None


def progress(ctx):
    try:
        with open(os.path.join(ctx.workdir, 'progress')) as f:
            return int(f.read() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_progress(ctx, n, what):
    end = time.monotonic() + 60
    while progress(ctx) < n:
        if time.monotonic() > end:
            raise TestFail('the client made %d INCRs, waited for %d (%s)' % (progress(ctx), n, what))
        time.sleep(0.05)


def start_redis(ctx, net, port):
    if not shutil.which('redis-server') or not shutil.which('redis-cli'):
        raise TestSkip('redis-server is not installed (make deps installs it)')
    srv = Proc(ctx, 'redis', ['redis-server', '--port', str(port), '--bind', '0.0.0.0', '--protected-mode', 'no',
                              '--save', '', '--appendonly', 'no', '--dir', ctx.workdir])
    end = time.monotonic() + 20
    while True:
        try:
            if 'PONG' in redis_cli(port, 'PING'):
                break
        except TestFail:
            pass
        if time.monotonic() > end:
            raise TestFail('redis-server did not answer')
        time.sleep(0.1)
    pipe = ''.join('SET key:%d value-%d\n' % (i, i) for i in range(20000))
    sh('redis-cli', '-h', '127.0.0.1', '-p', str(port), inp=pipe)
    if int(redis_cli(port, 'DBSIZE')) != 20000:
        raise TestFail('redis holds %s keys, expected 20000' % redis_cli(port, 'DBSIZE').strip())
    return srv


def t_redis(ctx):
    net = Net(ctx)
    srv = cli = None
    port = 16379 + os.getpid() % 500  # an orphan of an earlier failed run may hold a port a while
    try:
        srv = start_redis(ctx, net, port)
        cli = Proc(ctx, 'client', ['python3', '-c', REDIS_CLIENT, net.ip, str(port), ctx.workdir], ns=net.ns)
        wait_progress(ctx, 20, 'before the dump')
        res = {}
        cport = None
        for line in redis_cli(port, 'CLIENT', 'LIST').splitlines():
            m = re.search(r'\bid=(\d+) addr=%s:(\d+) ' % re.escape(net.peer), line)
            if m:
                cid, cport = int(m.group(1)), int(m.group(2))
        if cport is None:
            raise TestFail('the client is not in CLIENT LIST')
        dump_kill_restore(ctx, srv.pid, srv, net, port)
        n = progress(ctx)
        wait_progress(ctx, n + 30, 'after the restore')
        after = client_list_id(port, '%s:%d' % (net.peer, cport))
        open(os.path.join(ctx.workdir, 'stop'), 'w').close()
        res = json.loads(wait_file(os.path.join(ctx.workdir, 'result'), 'the client', 30))
        counter = int(redis_cli(port, 'GET', 'stasis:counter'))
        problems = list(res['errors'])
        if res.get('port') != cport or res.get('port1') != cport:
            problems.append('client port %s/%s, CLIENT LIST said %d' % (res.get('port'), res.get('port1'), cport))
        if after != cid or res.get('id0') != cid or res.get('id1') != cid:
            problems.append('client id before %d, after %s (CLIENT ID %s, %s)' % (cid, after, res.get('id0'),
                                                                                  res.get('id1')))
        if res['last'] - res['first'] + 1 != res['sent'] or counter != res['last']:
            problems.append('%d INCRs sent, replies %s..%s, counter %d' % (res['sent'], res['first'], res['last'],
                                                                            counter))
        if int(redis_cli(port, 'DBSIZE')) != 20001:
            problems.append('DBSIZE %s after restore' % redis_cli(port, 'DBSIZE').strip())
        if problems:
            raise TestFail('; '.join(problems))
    finally:
        for p in (cli, srv):
            if p:
                p.stop()
        try:
            os.kill(srv.pid if srv else -1, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass
        net.close()


# --- 1 MiB queued each way --------------------------------------------------

QUEUE_PEER = r'''
import os, socket, sys
role, host, port, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
N = 1 << 20
def pattern(seed):
    return bytes((i * 131 + seed * 7 + i // 4096) & 0xff for i in range(N))
if role == 'server':
    ls = socket.socket(fam)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if host == '::':  # dual stack: an IPv4 client gives an AF_INET6 socket with ::ffff:a.b.c.d
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((host, port))
    ls.listen(1)
    s, _ = ls.accept()
    if host == '::' and not s.getsockname()[0].startswith('::ffff:'):
        raise SystemExit('the accepted socket is not v4-mapped: %r' % (s.getsockname(),))
else:
    s = socket.socket(fam)
    s.connect((host, port))
s.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE: 1 MiB fits whatever the peer reads
mine, theirs = (pattern(1), pattern(2)) if role == 'server' else (pattern(2), pattern(1))
s.sendall(mine)
open(os.path.join(d, role + '-sent'), 'w').close()
go = os.path.join(d, role + '-go')
while not os.path.exists(go):
    import time; time.sleep(0.02)
got = bytearray()
while len(got) < N:
    b = s.recv(N - len(got))
    if not b:
        break
    got += b
ok = 'ok' if bytes(got) == theirs else 'bad: %d bytes, first difference at %s' % (len(got), next(
    (i for i in range(min(len(got), N)) if got[i] != theirs[i]), 'end'))
s.sendall(b'done')
end = s.recv(4)
with open(os.path.join(d, role + '-result.tmp'), 'w') as f:
    f.write('%s %s\n' % (ok, end.decode(errors='replace')))
os.rename(os.path.join(d, role + '-result.tmp'), os.path.join(d, role + '-result'))
'''


def t_queued(ctx, v6):
    """v6 'mapped': the server listens on [::] (IPV6_V6ONLY off), the client
    comes over IPv4: the server's socket is AF_INET6 with v4-mapped
    addresses, IPv4 on the wire."""
    net = Net(ctx)
    srv = cli = None
    port = 17379
    host = net.ip6 if v6 is True else net.ip
    d = ctx.workdir
    try:
        srv = Proc(ctx, 'server', ['python3', '-c', QUEUE_PEER, 'server', '::' if v6 == 'mapped' else host, str(port),
                                   d])
        end = time.monotonic() + 20
        while True:  # the listener first
            if subprocess.run(['ss', '-Hltn', 'sport = :%d' % port], capture_output=True, text=True).stdout:
                break
            if time.monotonic() > end:
                raise TestFail('the server does not listen')
            time.sleep(0.05)
        cli = Proc(ctx, 'client', ['python3', '-c', QUEUE_PEER, 'client', host, str(port), d], ns=net.ns)
        for role in ('server', 'client'):
            wait_file(os.path.join(d, role + '-sent'), 'the ' + role, 30)
        time.sleep(0.3)  # let the bytes settle into the queues
        img = dump_kill_restore(ctx, srv.pid, srv, net, port)
        if v6 == 'mapped':  # IPv4 on the wire: the lock must drop IPv4 packets
            with open(os.path.join(img, 'manifest.json')) as f:
                conns = json.load(f)['netlock']['conns']
            if [c['src'] for c in conns if ':' in c['src'] + c['dst']]:
                raise TestFail('the lock holds the v4-mapped connection as IPv6: %r' % conns)
        out = ctx.stasis(['inspect', img])
        if not re.search(r'connection: TCP(v6)? socket \S+:%d -> \S+ established, \d+ bytes to send' % port,
                         out.out):
            raise TestFail('inspect does not list the connection: %s' % out.out[-600:])
        for role in ('server', 'client'):
            open(os.path.join(d, role + '-go'), 'w').close()
        results = [wait_file(os.path.join(d, role + '-result'), 'the ' + role, 60).strip()
                   for role in ('server', 'client')]
        if results != ['ok done', 'ok done']:
            raise TestFail('server: %s; client: %s' % tuple(results))
    finally:
        for p in (cli, srv):
            if p:
                p.stop()
        net.close()


# --- failures and refusals (loopback, both ends in the tree) ---------------

def t_inject(ctx):
    """A dump that fails after the sockets went into repair mode leaves
    them out of it: the tree's connection carries every byte on."""
    w = ctx.workload('tcp_established', ['4'])
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    res = ctx.dump(w.pid, img, extra=['--tcp-established'], env={'STASIS_INJECT_FAIL': 'dump:after-memory'},
                   expect_ok=False)
    if res.rc != 1:
        raise TestFail('dump with an injected failure %s, expected exit 1' % res.what())
    expect_refused_unharmed(ctx, w, before, img)


def t_leave_running(ctx):
    w = ctx.workload('tcp_established', ['6'])
    img = ctx.path('img')
    ctx.dump(w.pid, img, extra=['--tcp-established', '--leave-running'])
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail('original after --leave-running --tcp-established: %s' % err)


def t_restore_needs_option(ctx):
    w = ctx.workload('tcp_established', ['4'])
    img = ctx.path('img')
    tree = st.tree_info(w.pid)
    ctx.dump(w.pid, img, extra=['--tcp-established'])
    for p in tree:
        if not st.pid_gone(p, 5):
            raise TestFail('pid %d is still there after the dump' % p)
    res, _, _ = ctx.restore(img, expect_ok=False)
    if res.rc != 1 or '--tcp-established' not in res.err:
        raise TestFail('restore without --tcp-established %s: %s' % (res.what(), res.last_err()))
    _, pid, wfd = ctx.restore(img, extra=['--tcp-established'])
    if pid != w.pid:
        raise TestFail('restore gave pid %s' % pid)
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail(err)


def t_dumper_killed(ctx):
    """stasis SIGKILLed once the connection is in repair mode: its guardian
    takes it out again, and the tree's connection carries every byte."""
    w = ctx.workload('tcp_established', ['4'])
    img = ctx.path('img')
    log = img + '-dump.log'
    p = subprocess.Popen([ctx.r.stasis, 'dump', '--type', 'process', '--pid', str(w.pid), '-D', img,
                          '--tcp-established', '-v', '--log-file', log], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_file(log, 'the dump', 30, lambda s: 'bytes to send' in s)  # both ends: after the second
        os.kill(p.pid, signal.SIGKILL)
    finally:
        err = p.communicate(timeout=ctx.left(60))[1].decode(errors='replace')
    if os.path.exists(os.path.join(img, 'manifest.json')):
        raise TestFail('the killed dump left a manifest (it finished first: make the workload bigger)')
    if 'guardian left the processes as they were' not in err:
        raise TestFail('no word from the guardian: %s' % err.strip()[-300:])
    time.sleep(0.2)
    e = w.finish(ctx.left(60))
    if e:
        raise TestFail('after the dumper was killed: %s' % e)


# --- half-closed ------------------------------------------------------------

HALF = r'''
import socket, sys, os
port, mode, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(('127.0.0.1', port))
if mode == 'shut':
    s.shutdown(socket.SHUT_WR)   # our FIN: FIN_WAIT2 once acknowledged
open(os.path.join(d, 'ready'), 'w').close()
data = b''
while True:
    b = s.recv(100)
    if not b:
        break
    data += b
with open(os.path.join(d, 'got.tmp'), 'w') as f:
    f.write(data.decode())
os.rename(os.path.join(d, 'got.tmp'), os.path.join(d, 'got'))
'''


def tcp_state(pid):
    out = subprocess.run(['ss', '-Htanp'], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if 'pid=%d,' % pid in line:
            return line.split()[0]
    return None


def t_half_closed(ctx, mode):
    ls = socket.socket()
    ls.bind(('127.0.0.1', 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    prog = Proc(ctx, 'half', ['python3', '-c', HALF, str(port), mode, ctx.workdir])
    try:
        c, _ = ls.accept()
        wait_file(os.path.join(ctx.workdir, 'ready'), 'the program')
        c.settimeout(10)
        if c.recv(10) != b'':
            raise TestFail('no EOF from the half-closed program')
        time.sleep(0.2)
        state = tcp_state(prog.pid)
        img = ctx.path('img')
        if state != 'FIN-WAIT-2':
            raise TestFail('the program is in %s, expected FIN-WAIT-2' % state)
        ctx.dump(prog.pid, img, extra=['--tcp-established'])
        prog.p.wait(10)
        st.pid_gone(prog.pid, 5)
        _, pid, _ = ctx.restore(img, extra=['--tcp-established'])
        c.sendall(b'after the restore')
        c.close()
        got = wait_file(os.path.join(ctx.workdir, 'got'), 'the restored program', 30)
        if got != 'after the restore':
            raise TestFail('the restored half-closed program read %r' % got)
    finally:
        prog.stop()
        ls.close()


# --- a container that keeps its address (--keep-ip) and its connection ----

DOCKER_SUBNET, DOCKER_IP, DOCKER_PORT = '172.30.78.0/24', '172.30.78.17', 7000
# The echo loop holds the connection at fd 3, and, while `read <&3` waits,
# at fd 0 too (ash moves it there for the builtin): a TCP connection on
# fd 0 of the container's first process is its own, not stdio that the
# restore gives the new container's (engine/files-ext.c).
DOCKER_ECHO = 'exec 3<&0 0</dev/null 1>/dev/null; while read -r l <&3; do echo "$l" >&3; done'


def echo_line(s, word):
    try:
        s.sendall((word + '\n').encode())
        got = b''
        while not got.endswith(b'\n'):
            got += echo_recv(s, word)
    except OSError as e:
        raise TestFail('the connection to the container broke at %r: %s' % (word, e))
    if got.decode().strip() != word:
        raise TestFail('echo %r, expected %r' % (got, word))


def echo_recv(s, word):
    try:
        b = s.recv(100)
    except OSError as e:
        raise TestFail('the connection to the container broke at %r: %s' % (word, e))
    if not b:
        raise TestFail('the container closed the connection (at %r)' % word)
    return b


def restore_sending(ctx, d, argv, new, s):
    """The restore, and a line sent as soon as the new container runs (its
    stub: the restore inside has not made the socket yet): it must meet
    the lock there, not a network namespace without the socket, which
    answers with a reset."""
    p = subprocess.Popen([ctx.r.stasis] + argv, env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < end:
        st_ = d.docker('inspect', '-f', '{{.State.Running}}', new, check=False)
        if st_.returncode == 0 and st_.stdout.strip() in ('true', b'true'):
            s.sendall(b'during\n')
            break
        time.sleep(0.02)
    else:
        p.kill()
        raise TestFail('the new container did not run before the restore ended')
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def t_docker(ctx, during=None):
    """An echo server (busybox nc -e cat) in a container on a user-defined
    network with a static address, a client on the host over the network's
    bridge: dumped with --tcp-established, removed, restored as a new
    container with --keep-ip --tcp-established; the client's socket carries
    on. during 'gone': the client sends a line once the container is gone
    (retransmitted until the restore); 'starting': as soon as the new
    container runs, before the restore inside made the socket. Neither may
    meet a reset: the dump's lock in the old namespace, then the host-side
    lock of the restore (runtime/sandbox.c), then the restore's own."""
    import dockerd
    d = dockerd.shared(ctx)
    net = 'stasis-tcpnet-%d' % os.getpid()
    name, new = 'stasis-tcp1-%d' % os.getpid(), 'stasis-tcp2-%d' % os.getpid()
    run = lambda *a: subprocess.run([ctx.r.stasis] + list(a), env=d.env, capture_output=True, text=True, timeout=120)
    d.docker('network', 'create', '--subnet', DOCKER_SUBNET, net)
    s = None
    try:
        d.docker('run', '-d', '--name', name, '--network', net, '--ip', DOCKER_IP, dockerd.IMAGE,
                 'busybox', 'nc', '-l', '-p', str(DOCKER_PORT), '-e', 'busybox', 'sh', '-c', DOCKER_ECHO)
        end = time.monotonic() + 30
        while s is None:
            try:
                s = socket.create_connection((DOCKER_IP, DOCKER_PORT), timeout=5)
            except OSError:
                if time.monotonic() > end:
                    raise TestFail('the container does not accept on %s:%d' % (DOCKER_IP, DOCKER_PORT))
                time.sleep(0.2)
        s.settimeout(60)
        echo_line(s, 'before')
        img = ctx.path('img')
        r = run('dump', '--type', 'docker', '--id', name, '-D', img, '--tcp-established', '-v', '--log-file',
                img + '-dump.log')
        if r.returncode != 0:
            raise TestFail('dump exit %d: %s' % (r.returncode, r.stderr[-400:]))
        if during == 'gone':  # retransmitted until a socket takes it: no reset meanwhile
            s.sendall(b'during\n')
        d.docker('rm', '-f', name)
        argv = ['restore', '-D', img, '--id', new, '--keep-ip', '--tcp-established', '-v', '--log-file',
                img + '-restore.log']
        r = run(*argv) if during != 'starting' else restore_sending(ctx, d, argv, new, s)
        if r.returncode != 0:
            raise TestFail('restore exit %d: %s' % (r.returncode, r.stderr[-400:]))
        try:
            if during:
                got = b''
                while not got.endswith(b'\n'):
                    got += echo_recv(s, 'during')
                if got != b'during\n':
                    raise TestFail('echo %r, expected the line sent while the container was away' % got)
            for i in range(3):
                echo_line(s, 'after%d' % i)
        except TestFail as e:
            st_ = d.inspect(new)['State']
            raise TestFail('%s (the restored container: running %s, exit code %s)' % (e, st_.get('Running'),
                                                                                     st_.get('ExitCode')))
        if image_table(img):
            raise TestFail('the lock %s is left after the restore' % image_table(img))
    finally:
        if s:
            s.close()
        for n in (name, new):
            d.docker('rm', '-f', n, check=False)
        d.docker('network', 'rm', net, check=False)


# --- Redis in a container, its client in another ---------------------------

REDIS_NET, REDIS_IP, REDIS_CLIENT_IP = '172.30.79.0/24', '172.30.79.17', '172.30.79.18'
REDIS_TAG = 'stasis-redis-tcp:test'  # its own tag: the scenarios of ctrcases remove theirs


class NcClient:
    """busybox nc in a container of its own (docker run -i), speaking RESP
    through the test's pipes: INCR every 10 ms on its one connection, each
    reply read before the next; a thread, until stop()."""

    def __init__(self, d, name, net):
        import threading
        self.p = subprocess.Popen(['docker', 'run', '-i', '--rm', '--name', name, '--network', net, '--ip',
                                   REDIS_CLIENT_IP, dockerd_image(), 'busybox', 'nc', REDIS_IP, '6379'],
                                  env=d.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, bufsize=0)
        self.errors, self.values, self.buf = [], [], b''
        self.done = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def reply(self, timeout=120):
        import select
        end = time.monotonic() + timeout
        while b'\r\n' not in self.buf:
            if not select.select([self.p.stdout], [], [], max(0.0, end - time.monotonic()))[0]:
                raise RuntimeError('no reply in %d s' % timeout)
            b = os.read(self.p.stdout.fileno(), 4096)
            if not b:
                raise RuntimeError('the client container\'s nc ended (exit %s)' % self.p.poll())
            self.buf += b
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def loop(self):
        try:
            while not self.done.is_set():
                self.p.stdin.write(b'INCR stasis:counter\r\n')
                r = self.reply()
                if not r.startswith(b':'):
                    raise RuntimeError('reply %r' % r)
                v = int(r[1:])
                if self.values and v != self.values[-1] + 1:
                    self.errors.append('gap: %d then %d' % (self.values[-1], v))
                self.values.append(v)
                time.sleep(0.01)
        except Exception as e:
            self.errors.append(repr(e))

    def wait(self, n, what):
        end = time.monotonic() + 90
        while len(self.values) < n and not self.errors:
            if time.monotonic() > end:
                raise TestFail('the client made %d INCRs, waited for %d (%s)' % (len(self.values), n, what))
            time.sleep(0.05)
        if self.errors:
            raise TestFail('the client %s: %s' % (what, '; '.join(self.errors)))

    def stop(self):
        self.done.set()
        self.t.join(30)
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(30)


def dockerd_image():
    import dockerd
    return dockerd.IMAGE


def redis_client_id(ip, addr):
    from ctrcases import Resp
    r = Resp(ip)
    try:
        for line in r.send(('CLIENT', 'LIST'))[0].splitlines():
            if ' addr=%s ' % addr in ' ' + line + ' ':
                return int(re.search(r'\bid=(\d+)', line).group(1))
    finally:
        r.close()
    return None


def redis_client_addr(ip):
    """The ip:port the client container's connection has at the server."""
    from ctrcases import Resp
    r = Resp(ip)
    try:
        m = re.search(r'\baddr=(%s:\d+) ' % re.escape(REDIS_CLIENT_IP), r.send(('CLIENT', 'LIST'))[0])
    finally:
        r.close()
    if not m:
        raise TestFail('the client container is not in CLIENT LIST')
    return m.group(1)


def t_docker_redis(ctx):
    """Redis (20,000 keys) in a container on a user-defined network with a
    static address, a client (busybox nc) in another container on it
    sending INCR every 10 ms on one connection: the server is dumped with
    --tcp-established, removed and restored as a new container with
    --keep-ip --tcp-established. The client's connection never errors,
    keeps its CLIENT LIST id, and every INCR got one reply, no gap."""
    import dockerd
    from ctrcases import redis_rootfs, redis_fill, run_id, Resp, REDIS_ARGS, KEYS
    d = dockerd.shared(ctx)
    pid = os.getpid()
    net, name, new, cname = ('stasis-rnet-%d' % pid, 'stasis-rs1-%d' % pid, 'stasis-rs2-%d' % pid,
                             'stasis-rc-%d' % pid)
    run = lambda *a: subprocess.run([ctx.r.stasis] + list(a), env=d.env, capture_output=True, text=True, timeout=120)
    rootfs = ctx.path('rootfs-redis')
    redis_rootfs(rootfs)
    d.import_dir(rootfs, REDIS_TAG)
    shutil.rmtree(rootfs, ignore_errors=True)
    d.docker('network', 'create', '--subnet', REDIS_NET, net)
    cli = None
    try:
        d.docker('run', '-d', '--name', name, '--network', net, '--ip', REDIS_IP, REDIS_TAG, *REDIS_ARGS)
        rid = redis_fill(REDIS_IP)
        cli = NcClient(d, cname, net)
        cli.wait(20, 'before the dump')
        addr = redis_client_addr(REDIS_IP)
        cid = redis_client_id(REDIS_IP, addr)
        img = ctx.path('img')
        r = run('dump', '--type', 'docker', '--id', name, '-D', img, '--tcp-established', '-v', '--log-file',
                img + '-dump.log')
        if r.returncode != 0:
            raise TestFail('dump exit %d: %s' % (r.returncode, r.stderr[-400:]))
        d.docker('rm', '-f', name)
        n = len(cli.values)
        r = run('restore', '-D', img, '--id', new, '--keep-ip', '--tcp-established', '-v', '--log-file',
                img + '-restore.log')
        if r.returncode != 0:
            raise TestFail('restore exit %d: %s' % (r.returncode, r.stderr[-400:]))
        cli.wait(n + 30, 'after the restore')
        problems = []
        after = redis_client_id(REDIS_IP, addr)
        if after != cid:
            problems.append('the client\'s CLIENT LIST id was %s, is %s (addr %s)' % (cid, after, addr))
        cli.stop()
        rr = Resp(REDIS_IP)
        counter, size = rr.send(('GET', 'stasis:counter'), ('DBSIZE',))
        rr.close()
        if cli.errors:
            problems += cli.errors
        v = cli.values
        if v[-1] - v[0] + 1 != len(v) or int(counter) != v[-1]:
            problems.append('%d INCRs, replies %d..%d, counter %s' % (len(v), v[0], v[-1], counter))
        if int(size) != KEYS + 1:
            problems.append('DBSIZE %s after the restore, expected %d' % (size, KEYS + 1))
        if image_table(img):
            problems.append('the lock %s is left after the restore' % image_table(img))
        if problems:
            raise TestFail('; '.join(problems))
        rr = Resp(REDIS_IP)
        if run_id(rr) != rid:
            raise TestFail('the run_id changed: the restored redis is not the same process')
        rr.close()
    finally:
        if cli:
            cli.stop()
        for c in (name, new, cname):
            d.docker('rm', '-f', c, check=False)
        d.docker('network', 'rm', net, check=False)
        d.docker('rmi', REDIS_TAG, check=False)


TESTS = [
    Test('tcp:redis', t_redis, 240),
    Test('tcp:queued-1mib', t_queued, 180, False),
    Test('tcp:queued-1mib-ipv6', t_queued, 180, True),
    Test('tcp:queued-1mib-v4mapped', t_queued, 180, 'mapped'),
    Test('tcp:inject-failure', t_inject, 120),
    Test('tcp:leave-running', t_leave_running, 120),
    Test('tcp:dumper-killed', t_dumper_killed, 120),
    Test('tcp:restore-needs-option', t_restore_needs_option, 120),
    Test('tcp:fin-wait2', t_half_closed, 90, 'shut'),
    Test('tcp:docker-keep-ip', t_docker, 240),
    Test('tcp:docker-keep-ip:sent-while-gone', t_docker, 240, 'gone'),
    Test('tcp:docker-keep-ip:sent-while-starting', t_docker, 240, 'starting'),
    Test('tcp:docker-redis', t_docker_redis, 300),
]
