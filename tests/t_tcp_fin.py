# SPDX-License-Identifier: LGPL-2.1-or-later
"""Closing TCP connections kept with --tcp-established: the peer's FIN is
given back to the restored socket by a segment restore sends itself
(engine/sk-tcp-fin.c). A server on our side of a veth pair, its client in
a network namespace of the test's own (t_tcp.Net):

  close_wait  the client sent its data and shut down its side; the server
              has not read it. Restored, it reads the data then EOF,
              writes a reply the client receives, closes; the client sees
              EOF.
  last_ack    the server read everything, replied and shut down its side;
              the client's namespace drops the server's packets, so the
              reply and FIN stay unacknowledged. Restored, the reply and
              FIN reach the client once the drop is removed.
  closing     the server shut down first (its reply and FIN dropped as
              above), then got the client's data and FIN, unread.

Both ends in the tree: a process and its child over 127.0.0.1 or ::1, the child
shut down its side (FIN_WAIT2), the parent has not read (CLOSE_WAIT).

No reset anywhere: the client's namespace counts TCP resets in and out
(nftables counters ahead of the drop), and the client's recv must end in
EOF, not an error. The states are checked with ss before the dump and
after the restore."""
import json
import os
import subprocess
import time

from runner import Test, TestFail
import stasistest as st
from t_tcp import Net, Proc, dump_kill_restore, image_table, sh, tcp_state, wait_file

DATA = 'the client said this, then shut down its side'

PEER = r'''
import json, os, socket, sys, time
role, mode, host, port, d = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
def wait(name):
    while not os.path.exists(os.path.join(d, name)):
        time.sleep(0.02)
def touch(name):
    open(os.path.join(d, name), 'w').close()
def read_all(s):
    got = b''
    while True:
        b = s.recv(4096)
        if not b:
            return got
        got += b
res = {}
try:
    if role == 'server':
        ls = socket.socket(fam)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(1)
        touch('listening')
        s, _ = ls.accept()
        ls.close()
        touch('accepted')
        if mode == 'closing':
            wait('shut')
            s.sendall(b'reply before')
            s.shutdown(socket.SHUT_WR)
            touch('server-shut')
        if mode == 'last_ack':
            res['got'] = read_all(s).decode()
            s.sendall(b'reply to ' + res['got'].encode())
            s.shutdown(socket.SHUT_WR)
            touch('server-shut')
        wait('go')
        if mode != 'last_ack':
            res['got'] = read_all(s).decode()
        if mode == 'close_wait':
            s.sendall(b'reply to ' + res['got'].encode())
        s.close()
    else:
        s = socket.create_connection((host, port))
        touch('connected')
        wait('send')
        s.sendall(sys.argv[6].encode())
        s.shutdown(socket.SHUT_WR)
        touch('client-shut')
        res['got'] = read_all(s).decode()
except Exception as e:
    res['error'] = repr(e)
with open(os.path.join(d, role + '-result.tmp'), 'w') as f:
    json.dump(res, f)
os.rename(os.path.join(d, role + '-result.tmp'), os.path.join(d, role + '-result'))
'''

EXPECT = {'close_wait': 'CLOSE-WAIT', 'last_ack': 'LAST-ACK', 'closing': 'CLOSING'}


def wait_state(pid, want, what, timeout=20):
    end = time.monotonic() + timeout
    while True:
        got = tcp_state(pid)
        if got == want:
            return
        if time.monotonic() > end:
            raise TestFail('%s: the server is in %s, expected %s' % (what, got, want))
        time.sleep(0.05)


class Watch:
    """In the client's namespace: counters of TCP resets in and out (ahead
    of everything), and a drop of the server's packets when asked."""

    def __init__(self, net, server, port):
        self.net, self.t = net, 'stasis_fin_%d' % os.getpid()
        rst = 'tcp flags & rst == rst counter;'
        sh('nft', '-f', '-', ns=net.ns, inp=(
            'table inet %s {\n'
            ' chain cin { type filter hook input priority -400; %s }\n'
            ' chain cout { type filter hook output priority -400; %s }\n'
            '}\n' % (self.t, rst, rst)))
        self.drop_rule = 'ip%s saddr %s tcp sport %d drop' % ('6' if ':' in server else '', server, port)

    def drop(self, on):
        if on:
            sh('nft', 'add', 'chain', 'inet', self.t, 'dropin',
               '{ type filter hook input priority 0; }', ns=self.net.ns)
            sh('nft', 'add', 'rule', 'inet', self.t, 'dropin', *self.drop_rule.split(), ns=self.net.ns)
        else:
            sh('nft', 'delete', 'chain', 'inet', self.t, 'dropin', ns=self.net.ns)

    def resets(self):
        out = sh('nft', 'list', 'table', 'inet', self.t, ns=self.net.ns)
        return sum(int(w.split()[0]) for w in out.split('packets ')[1:])


def restore_twice(ctx, srv):
    """The first restore fails after the sockets exist (the FIN given
    back to one of them): it must leave nothing, the peer waiting, and the
    lock in place for the second."""
    img = ctx.path('img')
    ctx.dump(srv.pid, img, extra=['--tcp-established'])
    srv.p.wait(10)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'restore:after-threads'}, extra=['--tcp-established'],
                            expect_ok=False)
    if res.rc != 1 or not st.pid_gone(srv.pid, 5):
        raise TestFail('restore with a failure injected %s; pid %d gone: %s' % (res.what(), srv.pid,
                                                                               st.pid_gone(srv.pid, 0)))
    if not image_table(img):
        raise TestFail('the failed restore removed the dump\'s network lock')
    with open(img + '-restore.log') as f:
        if "the peer's FIN is back" not in f.read():
            raise TestFail('the failed restore did not get as far as the FIN (move the injected failure)')
    os.rename(img + '-restore.log', img + '-restore-failed.log')
    _, got, _ = ctx.restore(img, extra=['--tcp-established'])
    if got != srv.pid or image_table(img):
        raise TestFail('the second restore gave pid %s (expected %d), lock left: %s' % (got, srv.pid,
                                                                                      image_table(img)))


def t_closing(ctx, mode, family='v4', how='restore'):
    """family: v4, v6, or mapped (the server listens on :: and the client
    comes over IPv4: an IPv6 socket with IPv4-mapped addresses).
    how: restore (dump, kill, restore), fail-first (restore_twice), or
    leave-running (the original carries on after the dump)."""
    net = Net(ctx)
    srv = cli = None
    port = 18379 + os.getpid() % 500
    host = net.ip6 if family == 'v6' else net.ip
    d = ctx.workdir
    touch = lambda name: open(os.path.join(d, name), 'w').close()
    try:
        watch = Watch(net, host, port)
        srv = Proc(ctx, 'server', ['python3', '-c', PEER, 'server', mode, '::' if family == 'mapped' else host,
                                   str(port), d])
        wait_file(os.path.join(d, 'listening'), 'the server')
        cli = Proc(ctx, 'client', ['python3', '-c', PEER, 'client', mode, host, str(port), d, DATA], ns=net.ns)
        wait_file(os.path.join(d, 'accepted'), 'the server')
        wait_file(os.path.join(d, 'connected'), 'the client')
        if mode != 'close_wait':
            watch.drop(True)
        if mode == 'closing':
            touch('shut')
            wait_file(os.path.join(d, 'server-shut'), 'the server')
        touch('send')
        wait_file(os.path.join(d, 'client-shut'), 'the client')
        wait_state(srv.pid, EXPECT[mode], 'before the dump')
        if how == 'fail-first':
            restore_twice(ctx, srv)
        elif how == 'leave-running':
            ctx.dump(srv.pid, ctx.path('img'), extra=['--tcp-established', '--leave-running'])
        else:
            dump_kill_restore(ctx, srv.pid, srv, net, port)
        wait_state(srv.pid, EXPECT[mode], 'after the ' + how, 5)
        if mode != 'close_wait':
            watch.drop(False)
        touch('go')
        results = [json.loads(wait_file(os.path.join(d, role + '-result'), 'the ' + role, 60))
                   for role in ('server', 'client')]
        problems = []
        if results[0] != {'got': DATA}:
            problems.append('the server: %s' % results[0])
        want = {'close_wait': 'reply to ' + DATA, 'last_ack': 'reply to ' + DATA, 'closing': 'reply before'}[mode]
        if results[1] != {'got': want}:
            problems.append('the client: %s, expected %r' % (results[1], want))
        if watch.resets():
            problems.append('%d TCP reset(s) seen in the client\'s namespace' % watch.resets())
        if problems:
            raise TestFail('; '.join(problems))
    finally:
        for p in (cli, srv):
            if p:
                p.stop()
        net.close()


# --- both ends in the tree ---------------------------------------------------

TREE = r'''
import os, socket, sys, time
d, host = sys.argv[1], sys.argv[2]
def put(name, text):
    with open(os.path.join(d, name + '.tmp'), 'w') as f:
        f.write(text)
    os.rename(os.path.join(d, name + '.tmp'), os.path.join(d, name))
ls = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
ls.bind((host, 0))
ls.listen(1)
pid = os.fork()
if pid == 0:
    c = socket.create_connection(ls.getsockname()[:2])
    ls.close()
    c.sendall(b'from the child')
    c.shutdown(socket.SHUT_WR)          # FIN_WAIT2
    while not os.path.exists(os.path.join(d, 'go')):
        time.sleep(0.02)
    got = b''
    while True:
        b = c.recv(100)
        if not b:
            break
        got += b
    put('child-got', got.decode())
    os._exit(0)
s, _ = ls.accept()
ls.close()
open(os.path.join(d, 'ready'), 'w').close()
while not os.path.exists(os.path.join(d, 'go')):   # CLOSE_WAIT, unread
    time.sleep(0.02)
got = b''
while True:
    b = s.recv(100)
    if not b:
        break
    got += b
s.sendall(b'parent read: ' + got)
s.close()
os.waitpid(pid, 0)
put('parent-got', got.decode())
'''


def t_tree(ctx, host):
    d = ctx.workdir
    prog = Proc(ctx, 'tree', ['python3', '-c', TREE, d, host])
    try:
        wait_file(os.path.join(d, 'ready'), 'the program')
        end = time.monotonic() + 20
        while tcp_state(prog.pid) != 'CLOSE-WAIT':
            if time.monotonic() > end:
                raise TestFail('the parent is in %s, expected CLOSE-WAIT' % tcp_state(prog.pid))
            time.sleep(0.05)
        img = ctx.path('img')
        ctx.dump(prog.pid, img, extra=['--tcp-established'])
        prog.p.wait(10)
        st.pid_gone(prog.pid, 5)
        _, pid, _ = ctx.restore(img, extra=['--tcp-established'])
        if pid != prog.pid or tcp_state(pid) != 'CLOSE-WAIT':
            raise TestFail('restored pid %s in state %s, expected %d in CLOSE-WAIT' % (pid, tcp_state(pid), prog.pid))
        open(os.path.join(d, 'go'), 'w').close()
        got = [wait_file(os.path.join(d, w + '-got'), 'the ' + w, 30) for w in ('parent', 'child')]
        if got != ['from the child', 'parent read: from the child']:
            raise TestFail('parent read %r, child %r' % tuple(got))
    finally:
        prog.stop()


TESTS = [
    Test('tcp:close-wait', t_closing, 180, 'close_wait'),
    Test('tcp:close-wait-ipv6', t_closing, 180, 'close_wait', 'v6'),
    Test('tcp:close-wait-v4mapped', t_closing, 180, 'close_wait', 'mapped'),
    Test('tcp:close-wait-restore-fails', t_closing, 180, 'close_wait', 'v4', 'fail-first'),
    Test('tcp:close-wait-leave-running', t_closing, 180, 'close_wait', 'v4', 'leave-running'),
    Test('tcp:last-ack', t_closing, 180, 'last_ack'),
    Test('tcp:last-ack-ipv6', t_closing, 180, 'last_ack', 'v6'),
    Test('tcp:closing', t_closing, 180, 'closing'),
    Test('tcp:closing-ipv6', t_closing, 180, 'closing', 'v6'),
    Test('tcp:close-wait-tree', t_tree, 120, '127.0.0.1'),
    Test('tcp:close-wait-tree-ipv6', t_tree, 120, '::1'),
]
