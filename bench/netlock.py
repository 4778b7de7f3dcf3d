#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""How long connections are blocked by the network lock of --tcp-established:
from the dump's lock (right after the freeze) to the restore's unlock (just
before the restored tree runs), for a dump + restore of a server with
clients connected from outside the tree; median of --runs.

    python3 bench/netlock.py --build build [--workload redis|echo] [--conns 4] [--runs 5]

The times are the engine's own ("stats: netlock ..." lines of the logs at
-v): blocked_ms is lock-to-unlock as the restore sees it (wall clock since
the dump took the lock, recorded in the image), dump_ms the lock held by
the dump, restore_ms the restore's own lock.

The connections are kept (TCP repair): each client checks its connection
after the restore ("kept" in the output); a run where one broke fails.

--workload redis: redis-server with 20,000 keys, clients sending PING on
one connection each; echo (the default where redis-server is missing): a
Python server echoing lines.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'lib'))
import stasistest as st  # noqa: E402

ECHO = r'''
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(('127.0.0.1', int(sys.argv[1])))
ls.listen(64)
def serve(c):
    while True:
        d = c.recv(4096)
        if not d:
            return
        c.sendall(b'+PONG\r\n' * d.count(b'\n'))
print('READY', flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


class RunError(Exception):
    pass


def start_server(opts, work, port):
    if opts.workload == 'redis':
        args = [shutil.which('redis-server'), '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'no', '--daemonize', 'no']
    else:
        args = [sys.executable, '-c', ECHO, str(port)]
    w = st.Workload(args[0], args[1:], work, os.path.join(work, 'server.log'))
    w.start()
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise RunError('the server did not start: %s' % w.log_tail())
    if opts.workload == 'redis':
        fill = ''.join('SET key:%d %d\r\n' % (i, i) for i in range(20000))
        subprocess.run(['redis-cli', '-p', str(port), '--pipe'], input=fill.encode(), capture_output=True,
                       check=True, timeout=60)
    return w


def ping(c):
    c.sendall(b'PING\r\n')
    c.settimeout(10)
    if not c.recv(100).startswith(b'+PONG'):
        raise OSError('no PONG')


def stats(log, what):
    m = re.search(r'stats: netlock %s conns=(\d+) held_ms=([\d.]+) blocked_ms=([\d.]+)' % what, log)
    return (int(m.group(1)), float(m.group(2)), float(m.group(3))) if m else None


def dump(stasis, pid, img, extra):
    res = st.run_cmd([stasis, 'dump', '--pid', str(pid), '-D', img, '--tcp-established', '-v',
                      '--log-file', img + '-dump.log'] + extra, timeout=300)
    return res


def one_run(opts, port):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-bench-netlock-')
    img = os.path.join(work, 'img')
    w = start_server(opts, work, port)
    conns, fds = [], []
    try:
        for _ in range(opts.conns):
            c = socket.create_connection(('127.0.0.1', port))
            ping(c)
            conns.append(c)
        kind = 'kept'
        d = dump(stasis, w.pid, img, [])
        if d.rc != 0:
            raise RunError('dump %s' % d.what())
        if st.wait_pid(w.pid, 10) is None or not st.pid_gone(w.pid, 5):
            raise RunError('the dumped server did not go away')
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach', '--tcp-established', '-v', '--log-file',
                          img + '-restore.log'], timeout=300, stdin=r)
        os.close(r)
        if res.rc != 0:
            raise RunError('restore %s' % res.what())
        with open(img + '-dump.log', errors='replace') as f:
            dlog = f.read()
        with open(img + '-restore.log', errors='replace') as f:
            rlog = f.read()
        dstat, rstat = stats(dlog, 'handed-over'), stats(rlog, 'released')
        if not dstat or not rstat:
            raise RunError('no "stats: netlock" line in the logs (dump %s, restore %s)' % (dstat, rstat))
        if kind == 'kept':
            for c in conns:
                try:
                    ping(c)
                except OSError as e:
                    raise RunError('a connection broke across the restore: %s' % e)
        return {'conns': rstat[0], 'blocked': rstat[2], 'dump': dstat[1], 'restore': rstat[1], 'kind': kind}
    finally:
        for c in conns:
            c.close()
        st.end_run(w, fds, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--workload', choices=('redis', 'echo'),
                    default='redis' if shutil.which('redis-server') and shutil.which('redis-cli') else 'echo')
    ap.add_argument('--conns', type=int, default=4, help='clients, one connection each')
    ap.add_argument('--runs', type=int, default=5)
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    st.make_subreaper()
    runs, errors = [], []
    for i in range(opts.runs):
        try:
            runs.append(one_run(opts, 36000 + (os.getpid() + i) % 20000))
        except (RunError, RuntimeError, subprocess.SubprocessError) as e:
            errors.append(str(e))
    for e in errors:
        print('# run failed: %s' % e)
    if not runs:
        return 1
    med = lambda k: statistics.median(r[k] for r in runs)
    print('%-8s %5s %5s %-7s | %11s | %12s %14s' % ('workload', 'conns', 'runs', 'kind', 'blocked ms',
                                                   'dump lock ms', 'restore lock ms'))
    print('%-8s %5d %5d %-7s | %11.1f | %12.1f %14.1f' % (opts.workload, runs[0]['conns'], len(runs),
                                                         runs[0]['kind'], med('blocked'), med('dump'),
                                                         med('restore')))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
