# SPDX-License-Identifier: LGPL-2.1-or-later
"""The network lock of --tcp-established, and unix connections that leave
the tree (--unix-close, --unix-reconnect).

The lock: a Python client in the tree keeps a TCP connection to an echo
server in the runner (loopback). Its lifecycle is checked with
--leave-running, with the dump paused while locked (STASIS_INJECT_PAUSE:
the ruleset holds our table with the connection's 4-tuple both ways, and
data the server sends then stays unacknowledged), with the dumper killed
there by SIGKILL, SIGINT and SIGTERM, and through a dump that hands the
lock to its image and a restore that removes it. Afterwards no table of
ours is left and the connection still carries data. The
connection is kept (TCP repair, engine/sk-tcp.c): after a restore it
carries data again.

The unix side: PostgreSQL with a psql connected from outside, dumped with
--unix-close and restored (the rows are there for a new psql, the server
saw EOF); and a client in the tree of a named listener outside it,
reconnected by --unix-reconnect."""
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import stasistest as st
from runner import Test, TestFail, TestSkip
from checks import expect_killed

CLIENT = r'''
import socket, sys
fam = socket.AF_UNIX if sys.argv[1] == 'unix' else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
c.connect(sys.argv[2] if fam == socket.AF_UNIX else ('127.0.0.1', int(sys.argv[2])))
print('READY', flush=True)
for line in sys.stdin:
    try:
        c.sendall(line.encode())
        got = b''
        while not got.endswith(b'\n'):
            d = c.recv(100)
            if not d:
                raise OSError('EOF')
            got += d
        print('echo', got.decode().strip(), flush=True)
    except OSError as e:
        print('error', e, flush=True)
'''


class Echo:
    """A server outside the tree (a thread of the runner) that echoes what
    each connection sends; keeps the connections for inspection."""

    def __init__(self, family=socket.AF_INET, path=None):
        self.ls = socket.socket(family, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(path if path else ('127.0.0.1', 0))
        self.ls.listen(8)
        self.addr = path if path else str(self.ls.getsockname()[1])
        self.conns = []
        self.got = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def _echo(self, c):
        while True:
            try:
                d = c.recv(100)
            except OSError:
                return
            if not d:
                return
            self.got.append(d)
            try:
                c.sendall(d)
            except OSError:
                return

    def close(self):
        for s in [self.ls] + self.conns:
            try:
                s.close()
            except OSError:
                pass


def need_nft():
    if os.geteuid() != 0:
        raise TestSkip('the network lock needs root')
    if not shutil.which('nft'):
        raise TestSkip('nft (Debian package nftables) is not installed')
    r = st.run_cmd(['nft', 'list', 'tables'], timeout=30)
    if r.rc != 0:
        raise TestSkip('nftables cannot be used here: %s' % r.last_err())


def tables():
    r = st.run_cmd(['nft', 'list', 'tables'], timeout=30)
    if r.rc != 0:
        raise TestFail('nft list tables %s' % r.what())
    return re.findall(r'^table inet (stasis-\S+)$', r.out, re.M)


def expect_no_table(owner, what, timeout=15):
    """No table of the stasis process owner (or of its image) remains."""
    end = time.monotonic() + timeout
    while True:
        left = [t for t in tables() if re.match(r'stasis-(image-)?%d-' % owner, t)]
        if not left:
            return
        if time.monotonic() > end:
            raise TestFail('%s: nftables table(s) %s left behind' % (what, ', '.join(left)))
        time.sleep(0.1)


def client(ctx, kind, addr):
    return ctx.workload('python3', ['-c', CLIENT, kind, addr], binary=shutil.which('python3'))


def expect_echo(w, word, timeout=30):
    """The client sends word through its connection and prints the echo."""
    start = len(w.log())
    os.write(w.stdin_w, (word + '\n').encode())
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = w.log()[start:]
        if re.search(r'^echo \S*%s$' % word, out, re.M):
            return
        if 'error' in out:
            raise TestFail('the connection broke: %s' % w.log_tail())
        time.sleep(0.05)
    raise TestFail('no echo of %r within %d s: %s' % (word, timeout, w.log_tail()))


def expect_echo_restored(ctx, w, wfd, word):
    """The restored client (stdin: wfd) still echoes through its kept
    connection."""
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    expect_echo(w, word, ctx.left(60))


def start_dump(ctx, pid, img, extra=(), env=None):
    e = dict(os.environ)
    e.update(ctx.r.extra_env)
    e.update(env or {})
    err = open(ctx.path('dump.err'), 'w+')
    p = subprocess.Popen([ctx.r.stasis, 'dump', '--pid', str(pid), '-D', img, '--tcp-established'] + list(extra),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=e, cwd=ctx.dir)
    err.close()
    return p


def wait_text(path, text, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path, errors='replace') as f:
            if text in f.read():
                return
        time.sleep(0.05)
    with open(path, errors='replace') as f:
        raise TestFail('no %r within %d s: %r' % (text, timeout, f.read()[-300:]))


def unacked(sock):
    """Bytes sent on sock and not acknowledged yet (SIOCOUTQ)."""
    import fcntl
    import struct
    return struct.unpack('i', fcntl.ioctl(sock.fileno(), 0x5411, b'\0' * 4))[0]


def t_leave_running(ctx):
    need_nft()
    srv = Echo()
    try:
        w = client(ctx, 'tcp', srv.addr)
        expect_echo(w, 'before')
        img = ctx.path('img')
        res = ctx.dump(w.pid, img, ['--tcp-established', '--leave-running'], expect_ok=False)
        if res.rc != 0:
            raise TestFail('dump %s' % res.what())
        with open(img + '-dump.log', errors='replace') as f:
            log = f.read()
        if 'network locked: 1 TCP connection' not in log or 'stats: netlock released' not in log:
            raise TestFail('the dump did not lock and release the connection: %r' % log[-400:])
        m = re.search(r'table inet stasis-(\d+)-', log)
        expect_no_table(int(m.group(1)), 'after the dump')
        expect_echo(w, 'after')
    finally:
        srv.close()


def t_paused(ctx, sig):
    """The dump paused while locked: the table holds the connection both
    ways and the server's data stays unacknowledged; then the dump goes on
    (sig None) or is killed by sig. No table is left, data flows again."""
    need_nft()
    srv = Echo()
    try:
        w = client(ctx, 'tcp', srv.addr)
        expect_echo(w, 'before')
        img = ctx.path('img')
        p = start_dump(ctx, w.pid, img, ['--leave-running'],
                       {'STASIS_INJECT_PAUSE': 'dump:locked', 'STASIS_INJECT_PAUSE_MS': '3000' if sig is None else '60000'})
        ctx.r.at_end(lambda: p.poll() is None and p.kill())
        wait_text(ctx.path('dump.err'), 'paused at dump:locked', ctx.left(30))
        ours = [t for t in tables() if t.startswith('stasis-%d-' % p.pid)]
        if len(ours) != 1:
            raise TestFail('while locked: expected one table stasis-%d-*, the ruleset has %s' % (p.pid, tables()))
        listing = st.run_cmd(['nft', 'list', 'table', 'inet', ours[0]], timeout=30).out
        conn = srv.conns[0]
        port, w_port = conn.getsockname()[1], conn.getpeername()[1]
        for a, b in ((port, w_port), (w_port, port)):
            if not re.search(r'127\.0\.0\.1 \. %d \. 127\.0\.0\.1 \. %d\b' % (a, b), listing):
                raise TestFail('the lock does not hold %d -> %d: %s' % (a, b, listing))
        conn.sendall(b'x')  # the client is frozen: only the kernel would answer
        time.sleep(0.5)
        if unacked(conn) == 0:
            raise TestFail('data sent to the locked connection was acknowledged: packets are not dropped')
        if sig is not None:
            os.kill(p.pid, sig)
        try:
            p.wait(ctx.left(60))
        except subprocess.TimeoutExpired:
            raise TestFail('the dump did not end')
        with open(ctx.path('dump.err'), errors='replace') as f:
            err = f.read()
        if sig is None and p.returncode != 0:
            raise TestFail('dump exit %d: %s' % (p.returncode, err[-300:]))
        if sig is not None and p.returncode == 0:
            raise TestFail('the dump killed by %s succeeded' % signal.Signals(sig).name)
        expect_no_table(p.pid, 'after the dump')
        if sig == signal.SIGKILL:  # the guardian's word comes after the dumper's end
            wait_text(ctx.path('dump.err'), 'guardian left the processes as they were', ctx.left(30))
        if not st.proc_state(w.pid) or st.proc_state(w.pid) in 'tTZ':
            raise TestFail('the client is %s after the dump' % st.proc_state(w.pid))
        w_log = len(w.log())
        end = time.monotonic() + 30
        while unacked(conn) and time.monotonic() < end:  # retransmitted once the lock is gone
            time.sleep(0.1)
        if unacked(conn):
            raise TestFail('the byte sent while locked was never acknowledged')
        expect_echo(w, 'after')  # 'xafter': the byte sent while locked comes first
        if 'error' in w.log()[w_log:]:
            raise TestFail('the client saw an error: %s' % w.log_tail())
    finally:
        srv.close()


def dump_handover(ctx, w, img):
    """Dumps w with --tcp-established (killed): the lock goes to the image;
    returns the manifest's record of it."""
    res = ctx.dump(w.pid, img, ['--tcp-established'], expect_ok=False)
    if res.rc != 0:
        raise TestFail('dump %s' % res.what())
    expect_killed(w.pid)
    import json
    with open(os.path.join(img, 'manifest.json')) as f:
        lock = json.load(f).get('netlock')
    if not lock or len(lock.get('conns', [])) != 1 or not lock.get('table'):
        raise TestFail('the manifest does not record the lock: %r' % lock)
    if lock['table'] not in tables():
        raise TestFail('the image\'s table %s is not in the ruleset after the dump' % lock['table'])
    ctx.r.at_end(lambda: st.run_cmd(['nft', 'delete', 'table', 'inet', lock['table']], timeout=30))
    return lock


def t_handover(ctx):
    """A dump that kills the tree hands the lock to its image; the restore
    with --tcp-established removes it (and its own) just before the tree
    runs, and says how long the connection was blocked."""
    need_nft()
    srv = Echo()
    try:
        w = client(ctx, 'tcp', srv.addr)
        expect_echo(w, 'before')
        img = ctx.path('img')
        lock = dump_handover(ctx, w, img)
        res, pid, wfd = ctx.restore(img, extra=['--tcp-established'])
        if lock['table'] in tables():
            raise TestFail('the image\'s table %s is still there after the restore' % lock['table'])
        expect_echo_restored(ctx, w, wfd, 'restored')
        with open(img + '-restore.log', errors='replace') as f:
            log = f.read()
        m = re.search(r'stats: netlock released conns=1 held_ms=[\d.]+ blocked_ms=([\d.]+)', log)
        if not m or float(m.group(1)) <= 0:
            raise TestFail('the restore did not report the time blocked: %r' % log[-400:])
        m = re.search(r'table inet (stasis-\d+-\d+)', log)
        if not m or m.group(1) in tables():
            raise TestFail('the restore\'s own table is still there')
        st.kill_reap(pid)
    finally:
        srv.close()


NETNS_TREE = r'''
import os, socket, subprocess, sys
subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
ls = socket.socket()
ls.bind(('127.0.0.1', 0))
ls.listen(1)
if os.fork() == 0:
    c = socket.create_connection(ls.getsockname())
    while True:
        d = c.recv(100)
        if not d:
            os._exit(0)
        c.sendall(d)
s, _ = ls.accept()
print('READY', flush=True)
for line in sys.stdin:
    s.sendall(line.encode())
    got = b''
    while not got.endswith(b'\n'):
        got += s.recv(100)
    print('echo', got.decode().strip(), flush=True)
'''


def netns_tables(pid):
    r = st.run_cmd(['nsenter', '--net=/proc/%d/ns/net' % pid, 'nft', 'list', 'tables'], timeout=30)
    if r.rc != 0:
        raise TestFail('nft in the tree\'s network namespace %s' % r.what())
    return re.findall(r'^table inet (stasis-\S+)$', r.out, re.M)


def t_netns(ctx):
    """A tree in a network namespace of its own (both ends of a loopback
    connection in it): the lock is in that namespace's ruleset, not the
    host's, and the guardian removes it there when the dumper is killed."""
    need_nft()
    if not shutil.which('unshare') or not shutil.which('nsenter'):
        raise TestSkip('unshare/nsenter (util-linux) missing')
    w = ctx.workload(shutil.which('unshare'), ['-n', shutil.which('python3'), '-c', NETNS_TREE],
                     binary=shutil.which('unshare'))
    expect_echo(w, 'before')
    p = start_dump(ctx, w.pid, ctx.path('img'), ['--leave-running'], {'STASIS_INJECT_PAUSE': 'dump:locked'})
    ctx.r.at_end(lambda: p.poll() is None and p.kill())
    wait_text(ctx.path('dump.err'), 'paused at dump:locked', ctx.left(30))
    mine = lambda ts: [t for t in ts if t.startswith('stasis-%d-' % p.pid)]
    if len(mine(netns_tables(w.pid))) != 1 or mine(tables()):
        raise TestFail('while locked: the namespace has %s, the host %s' % (netns_tables(w.pid), tables()))
    os.kill(p.pid, signal.SIGKILL)
    p.wait(ctx.left(30))
    wait_text(ctx.path('dump.err'), 'guardian left the processes as they were', ctx.left(30))
    if mine(netns_tables(w.pid)):
        raise TestFail('the guardian left %s in the namespace' % netns_tables(w.pid))
    expect_echo(w, 'after')


def t_restore_killed(ctx):
    """A restore killed by SIGKILL while it holds its lock: its table goes
    with it (the kernel's, "flags owner"), the dump's stays for a second
    try, which removes both."""
    need_nft()
    srv = Echo()
    try:
        w = client(ctx, 'tcp', srv.addr)
        expect_echo(w, 'before')
        img = ctx.path('img')
        lock = dump_handover(ctx, w, img)
        e = dict(os.environ, STASIS_INJECT_PAUSE='restore:locked')
        err = open(ctx.path('restore.err'), 'w+')
        p = subprocess.Popen([ctx.r.stasis, 'restore', '-D', img, '--detach', '--tcp-established'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=e, cwd=ctx.dir)
        err.close()
        ctx.r.at_end(lambda: p.poll() is None and p.kill())
        wait_text(ctx.path('restore.err'), 'paused at restore:locked', ctx.left(30))
        if not [t for t in tables() if t.startswith('stasis-%d-' % p.pid)]:
            raise TestFail('the restore holds no table while paused: %s' % tables())
        p.kill()
        p.wait(ctx.left(30))
        expect_no_table(p.pid, 'after the restore was killed')
        if lock['table'] not in tables():
            raise TestFail('the dump\'s table %s went with the killed restore' % lock['table'])
        st.reap_zombie_children()
        if not st.pid_gone(w.pid, 10):
            raise TestFail('the killed restore left pid %d behind' % w.pid)
        res, pid, wfd = ctx.restore(img, extra=['--tcp-established'])
        if lock['table'] in tables():
            raise TestFail('the second restore left the dump\'s table %s' % lock['table'])
        expect_echo_restored(ctx, w, wfd, 'restored')
        st.kill_reap(pid)
    finally:
        srv.close()


def t_sweep(ctx):
    """A table left by a stasis that died (its guardian too) is removed by
    the next run; a live owner's table is not."""
    need_nft()
    dead = subprocess.Popen(['true'])
    dead.wait()
    start = open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19]
    stale, live = 'stasis-%d-1' % dead.pid, 'stasis-%d-%s' % (os.getpid(), start)
    for t in (stale, live):
        if st.run_cmd(['nft', 'add', 'table', 'inet', t], timeout=30).rc != 0:
            raise TestFail('cannot make the table %s' % t)
    try:
        w = ctx.workload('python3', ['-c', 'import time; print("READY", flush=True); time.sleep(600)'],
                         binary=shutil.which('python3'))
        ctx.dump(w.pid, ctx.path('img'), ['--leave-running', '--tcp-established'])
        left = tables()
        if stale in left:
            raise TestFail('the stale table %s was not removed by the next run' % stale)
        if live not in left:
            raise TestFail('the table %s of a live owner was removed' % live)
    finally:
        for t in (stale, live):
            st.run_cmd(['nft', 'delete', 'table', 'inet', t], timeout=30)


def t_unix_refused(ctx):
    path = ctx.path('srv.sock')
    srv = Echo(socket.AF_UNIX, path)
    try:
        w = client(ctx, 'unix', path)
        res = ctx.dump(w.pid, ctx.path('img'), expect_ok=False)
        if res.rc != 1 or not all(x in res.err for x in ('outside the tree', '--unix-close', '--unix-reconnect',
                                                          path, 'fd ')):
            raise TestFail('dump %s, expected a refusal naming fd, path and both options' % res.what())
        expect_echo(w, 'after')
    finally:
        srv.close()


def t_unix_reconnect(ctx):
    """A client in the tree of a listener outside it: restored connected to
    that listener again, as a new connection."""
    path = ctx.path('srv.sock')
    srv = Echo(socket.AF_UNIX, path)
    try:
        w = client(ctx, 'unix', path)
        expect_echo(w, 'before')
        img = ctx.path('img')
        ctx.dump(w.pid, img, ['--unix-reconnect'])
        expect_killed(w.pid)
        res, pid, stdin_w = ctx.restore(img)
        w.set_stdin(stdin_w)
        w.pid = pid
        expect_echo(w, 'after')
        if len(srv.conns) != 2:
            raise TestFail('the server saw %d connections, expected 2 (the first and the reconnected)' %
                           len(srv.conns))
    finally:
        srv.close()


# --- PostgreSQL --------------------------------------------------------------

def pg_bin():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/postgres'))
    if not found or not shutil.which('psql'):
        raise TestSkip('PostgreSQL is not installed (Debian package postgresql)')
    try:
        pwd.getpwnam('postgres')
    except KeyError:
        raise TestSkip('no postgres user')
    return os.path.dirname(found[-1])


def as_postgres():
    pw = pwd.getpwnam('postgres')
    return dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])


def psql(sockdir, port, sql, timeout=30):
    return subprocess.run(['psql', '-X', '-A', '-t', '-h', sockdir, '-p', str(port), '-U', 'postgres', '-d',
                           'postgres', '-c', sql], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def pg_start(ctx, bindir, data, sockdir, port):
    log = open(ctx.path('postgres.log'), 'a')
    p = subprocess.Popen([os.path.join(bindir, 'postgres'), '-D', data, '-p', str(port), '-k', sockdir, '-c',
                          'listen_addresses=', '-c', 'log_disconnections=on'], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, cwd=data, **as_postgres())
    log.close()
    end = time.monotonic() + ctx.left(60)
    while time.monotonic() < end:
        if psql(sockdir, port, 'select 1').returncode == 0:
            return p
        if p.poll() is not None:
            raise TestFail('postgres exited: %s' % open(ctx.path('postgres.log')).read()[-300:])
        time.sleep(0.2)
    raise TestFail('postgres did not start')


def pg_stop(pid):
    try:
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown
    except ProcessLookupError:
        return
    if st.wait_pid(pid, 20) is None:
        st.kill_reap(pid)


def t_postgres(ctx):
    bindir = pg_bin()
    data, sockdir = ctx.path('pgdata'), ctx.path('pgsock')
    pw = pwd.getpwnam('postgres')
    for d in (data, sockdir):
        os.mkdir(d, 0o700)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    init = subprocess.run([os.path.join(bindir, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres'],
                          capture_output=True, text=True, cwd=ctx.dir, timeout=ctx.left(120), **as_postgres())
    if init.returncode != 0:
        raise TestFail('initdb: %s' % (init.stderr or init.stdout)[-300:])
    port = 20000 + os.getpid() % 20000
    pg = pg_start(ctx, bindir, data, sockdir, port)
    root = pg.pid
    try:
        r = psql(sockdir, port, 'create table t (x int); insert into t select generate_series(1, 1000)')
        if r.returncode != 0:
            raise TestFail('psql: %s' % r.stderr)
        # A psql connected from outside the tree, idle between queries.
        client_p = subprocess.Popen(['psql', '-X', '-A', '-t', '-h', sockdir, '-p', str(port), '-U', 'postgres',
                                     '-d', 'postgres'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        client_p.stdin.write('select count(*) from t;\nselect pg_backend_pid();\n')
        client_p.stdin.flush()
        if client_p.stdout.readline().strip() != '1000':
            raise TestFail('the connected psql does not see the rows')
        backend = int(client_p.stdout.readline())
        img = ctx.path('img')
        res = ctx.dump(root, img, expect_ok=False)
        if res.rc != 1 or '--unix-close' not in res.err:
            raise TestFail('dump with psql connected %s, expected a refusal naming --unix-close' % res.what())
        tree = st.tree_info(root)
        ctx.dump(root, img, ['--unix-close'])
        expect_killed(root, 'postmaster')
        for p in tree:  # its children are ours to reap (subreaper)
            if not st.pid_gone(p, 10):
                raise TestFail('pid %d of the dumped tree is still there' % p)
        res, pid, _ = ctx.restore(img)
        if pid != root:
            raise TestFail('restored postmaster is pid %s, expected %d' % (pid, root))
        # The psql of before finds its connection gone (EOF): non-interactive,
        # it says so and ends; a new one reconnects and sees the rows.
        out, _ = client_p.communicate('select count(*) from t;\n', timeout=ctx.left(30))
        if 'connection' not in out:
            raise TestFail('the old psql did not notice its lost connection: %r' % out[-200:])
        r = psql(sockdir, port, 'select count(*) from t')
        if r.returncode != 0 or r.stdout.strip() != '1000':
            raise TestFail('after restore: psql %s %r %r' % (r.returncode, r.stdout, r.stderr[-200:]))
        gone = '[%d] LOG:  disconnection' % backend
        end = time.monotonic() + 15
        while gone not in open(ctx.path('postgres.log')).read() and time.monotonic() < end:
            time.sleep(0.1)
        if gone not in open(ctx.path('postgres.log')).read():
            raise TestFail('the restored backend %d never saw its client go (no disconnection logged)' % backend)
        # The restored server writes (WAL, shared buffers), shuts down
        # cleanly (its checkpointer writes them out) and, started again
        # from its files alone, has the row written after the restore.
        r = psql(sockdir, port, "insert into t values (-1); checkpoint")
        if r.returncode != 0:
            raise TestFail('insert after restore: %r' % r.stderr[-200:])
        os.kill(root, signal.SIGINT)  # fast shutdown
        if st.wait_pid(root, ctx.left(30)) is None:
            raise TestFail('the restored postmaster did not shut down on SIGINT')
        if 'database system is shut down' not in open(ctx.path('postgres.log')).read():
            raise TestFail('no clean shutdown logged: %s' % open(ctx.path('postgres.log')).read()[-300:])
        pg = pg_start(ctx, bindir, data, sockdir, port)
        root = pg.pid
        r = psql(sockdir, port, 'select count(*), min(x) from t')
        if r.returncode != 0 or r.stdout.strip() != '1001|-1':
            raise TestFail('after a restart: %r %r' % (r.stdout, r.stderr[-200:]))
    finally:
        pg_stop(root)


TESTS = [
    Test('netlock:leave-running', t_leave_running, 90),
    Test('netlock:paused', t_paused, 90, None),
    Test('netlock:kill-SIGKILL', t_paused, 90, signal.SIGKILL),
    Test('netlock:kill-SIGINT', t_paused, 90, signal.SIGINT),
    Test('netlock:kill-SIGTERM', t_paused, 90, signal.SIGTERM),
    Test('netlock:handover', t_handover, 90),
    Test('netlock:netns', t_netns, 90),
    Test('netlock:restore-killed', t_restore_killed, 90),
    Test('netlock:sweep', t_sweep, 60),
    Test('unix:outside-refused', t_unix_refused, 60),
    Test('unix:reconnect', t_unix_reconnect, 90),
    Test('unix:postgres-close', t_postgres, 240),
]
