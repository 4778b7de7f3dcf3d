# SPDX-License-Identifier: LGPL-2.1-or-later
"""Real programs (not written by us) dumped and restored as whole trees:
a bash loop forking children, a shell pipeline, a python3 multiprocessing
pool, busybox httpd, a Node.js HTTP server (libuv: epoll, eventfds, its
thread pool) and a Java program (a JVM: some twenty threads, a shared
perf-data file mapping, signals for safepoints and attach). Each is
checked by what it does after the restore (its output carries on with no
gap, the server answers, the JVM's threads all move on and jcmd works)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import stasistest as st
from runner import Test, TestFail


BASH_LOOP = 'i=0; while :; do i=$((i+1)); echo "$i $(date +%s)" >> out; sleep 0.05; done'
PIPELINE = ('i=0; while :; do i=$((i+1)); echo "n $i"; sleep 0.02; done | grep --line-buffered n | '
            'while read a b; do echo "$b" >> out; done')
PY_POOL = r'''
import multiprocessing as mp, time
def work(x):
    return x * x
if __name__ == '__main__':
    with mp.Pool(4) as pool:
        i = 0
        while True:
            res = pool.map(work, range(i, i + 8))
            if res != [x * x for x in range(i, i + 8)]:
                raise SystemExit('bad results at %d' % i)
            with open('out', 'a') as f:
                f.write('%d\n' % i)
            i += 8
            time.sleep(0.05)
'''


class Program:
    def __init__(self, ctx, name, argv):
        self.ctx, self.name = ctx, name
        self.log = open(ctx.path(name + '.log'), 'ab')
        self.p = subprocess.Popen(argv, cwd=ctx.workdir, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True, close_fds=True)
        self.pid = self.p.pid
        self.pids = set()

    def out(self):
        try:
            with open(os.path.join(self.ctx.workdir, 'out')) as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_out(self, lines, timeout=10):
        end = time.monotonic() + timeout
        while self.out().count('\n') < lines:
            if time.monotonic() > end:
                raise TestFail('%s wrote %d lines in %d s' % (self.name, self.out().count('\n'), timeout))
            time.sleep(0.05)

    def dump_restore(self, min_procs=1):
        tree = st.tree_info(self.pid)
        if len(tree) < min_procs:
            raise TestFail('%s has %d processes, expected %d or more' % (self.name, len(tree), min_procs))
        img = self.ctx.path('img')
        self.ctx.dump(self.pid, img)
        self.p.wait(10)
        with open(os.path.join(img, 'manifest.json')) as f:
            nodes = json.load(f)['tree']
        dumped = {p['pid'] for p in nodes}
        lasting = {p['pid'] for p in nodes if p['comm'] not in ('sleep', 'date') and not p.get('zombie')}
        for pid in set(tree) | dumped:
            if not st.pid_gone(pid, 3):
                raise TestFail('pid %d is still there after the dump' % pid)
        _, pid, _ = self.ctx.restore(img)
        if pid != self.pid:
            raise TestFail('restore gave pid %s, expected %d' % (pid, self.pid))
        after = st.tree_info(self.pid)
        self.pids = set(after) | dumped
        # Short-lived children (sleep, date) may be gone or new by now; the
        # others must all be back.
        if not lasting <= set(after):
            raise TestFail('tree after restore %s lacks some of %s' % (sorted(after), sorted(lasting)))
        return len(dumped)

    def stop(self):
        for pid in sorted(self.pids | set(st.tree_info(self.pid)) | {self.pid}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.log.close()


def numbers(text, step=1):
    nums = [int(l.split()[0]) for l in text.splitlines()]
    for a, b in zip(nums, nums[1:]):
        if b != a + step:
            raise TestFail('sequence broken: %d then %d' % (a, b))
    return nums


def run_counting(ctx, name, argv, step=1, min_procs=1):
    prog = Program(ctx, name, argv)
    try:
        prog.wait_out(5)
        n = prog.dump_restore(min_procs)
        before = len(prog.out().splitlines())
        prog.wait_out(before + 8)
        nums = numbers(prog.out(), step)
        if st.proc_state(prog.pid) in (None, 'Z'):
            raise TestFail('%s died after the restore' % name)
        return n, nums
    finally:
        prog.stop()


def t_bash_loop(ctx):
    run_counting(ctx, 'bash-loop', ['bash', '-c', BASH_LOOP])


def t_pipeline(ctx):
    run_counting(ctx, 'pipeline', ['bash', '-c', PIPELINE], min_procs=3)


def t_python_pool(ctx):
    py = shutil.which('python3') or '/usr/bin/python3'
    run_counting(ctx, 'python-pool', [py, '-c', PY_POOL], step=8, min_procs=5)


def http_get(port, timeout=3):
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(b'GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n')
        data = b''
        while True:
            b = s.recv(65536)
            if not b:
                return data
            data += b


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def t_httpd(ctx):
    bb = shutil.which('busybox')
    if not bb:
        raise TestFail('busybox is not installed (make deps installs busybox-static)')
    www = os.path.join(ctx.workdir, 'www')
    os.mkdir(www)
    body = b'written before the dump %d\n' % time.monotonic_ns()
    with open(os.path.join(www, 'index.html'), 'wb') as f:
        f.write(body)
    port = free_port()
    prog = Program(ctx, 'httpd', [bb, 'httpd', '-f', '-p', '127.0.0.1:%d' % port, '-h', www])
    try:
        end = time.monotonic() + 5
        while True:
            try:
                if body in http_get(port):
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise TestFail('httpd did not answer before the dump')
            time.sleep(0.05)
        prog.dump_restore()
        for i in range(3):
            got = http_get(port)
            if body not in got:
                raise TestFail('request %d after restore got %r' % (i, got[:200]))
    finally:
        prog.stop()


# Worker threads count and make garbage (the GC moves objects and stops
# every thread at safepoints); the main thread checks a 32 MiB array and
# writes "line counts..." to out every 100 ms.
JAVA_PROG = r'''
import java.io.*;
import java.util.concurrent.atomic.AtomicLongArray;
public class Counting {
    static final int THREADS = 4;
    public static void main(String[] args) throws Exception {
        long[] data = new long[4 << 20];
        for (int i = 0; i < data.length; i++) data[i] = i * 31L + 7;
        AtomicLongArray counts = new AtomicLongArray(THREADS);
        for (int t = 0; t < THREADS; t++) {
            final int k = t;
            Thread th = new Thread(() -> {
                byte[][] keep = new byte[64][];
                for (long n = 0; ; n++) {
                    keep[(int) (n & 63)] = new byte[4096];
                    counts.incrementAndGet(k);
                    try { Thread.sleep(1); } catch (InterruptedException e) { return; }
                }
            });
            th.setDaemon(true);
            th.start();
        }
        for (long line = 1; ; line++) {
            for (int i = 0; i < data.length; i += 97)
                if (data[i] != i * 31L + 7) {
                    System.out.println("BAD data at " + i);
                    System.exit(1);
                }
            StringBuilder b = new StringBuilder().append(line);
            for (int t = 0; t < THREADS; t++) b.append(' ').append(counts.get(t));
            try (FileWriter w = new FileWriter("out", true)) { w.write(b.append('\n').toString()); }
            Thread.sleep(100);
        }
    }
}
'''


def t_java(ctx):
    javac, java, jcmd = shutil.which('javac'), shutil.which('java'), shutil.which('jcmd')
    if not (javac and java and jcmd):
        raise TestFail('javac, java or jcmd is missing (make deps installs default-jdk-headless)')
    with open(os.path.join(ctx.workdir, 'Counting.java'), 'w') as f:
        f.write(JAVA_PROG)
    c = subprocess.run([javac, 'Counting.java'], cwd=ctx.workdir, capture_output=True, text=True, timeout=120)
    if c.returncode != 0:
        raise TestFail('javac: %s' % c.stderr[-300:])
    prog = Program(ctx, 'java', [java, '-Xmx128m', '-cp', ctx.workdir, 'Counting'])
    pid = prog.pid
    try:
        prog.wait_out(5, 60)
        threads = len(os.listdir('/proc/%d/task' % pid))
        if threads < 10:
            raise TestFail('the JVM has %d threads: expected its usual twenty or so' % threads)
        prog.dump_restore()
        lines = prog.out().splitlines()
        before = [int(x) for x in lines[-1].split()[1:]]
        prog.wait_out(len(lines) + 8, 30)
        numbers(prog.out())
        after = [int(x) for x in prog.out().splitlines()[-1].split()[1:]]
        if not all(a > b for a, b in zip(after, before)):
            raise TestFail('a worker thread stopped counting after the restore: %s then %s' % (before, after))
        # (Its thread count may change: compiler threads come and go.) The
        # attach mechanism (a signal, then a unix socket it makes) and a
        # full GC that stops every thread.
        j = subprocess.run([jcmd, str(pid), 'GC.run'], capture_output=True, text=True, timeout=60)
        if j.returncode != 0 or 'Command executed successfully' not in j.stdout:
            raise TestFail('jcmd GC.run after the restore: %s %s' % (j.stdout[-200:], j.stderr[-200:]))
        n = len(prog.out().splitlines())
        prog.wait_out(n + 3, 10)
    finally:
        prog.stop()
        # Killed, the JVM leaves its perf-data file and attach socket.
        perf = '/tmp/hsperfdata_%s' % pwd_name()
        for leftover in ('%s/%d' % (perf, pid), '/tmp/.java_pid%d' % pid):
            try:
                os.unlink(leftover)
            except OSError:
                pass
        try:
            os.rmdir(perf)  # only if no other JVM of this user has a file there
        except OSError:
            pass


def pwd_name():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


# A timer appends to out; each request reads a file through libuv's
# thread pool and answers with the count, the file's length and a byte
# of a 16 MiB buffer.
NODE_PROG = r'''
const http = require('http'), fs = require('fs');
let n = 0;
const big = Buffer.alloc(16 << 20, 7);
setInterval(() => { n++; fs.appendFileSync('out', n + '\n'); }, 100);
http.createServer((req, res) => {
    fs.readFile('server.js', (e, d) => res.end(e ? 'error ' + e.code : 'n=' + n + ' len=' + d.length + ' big=' + big[12345]));
}).listen(Number(process.argv[2]), '127.0.0.1');
'''


def t_node(ctx):
    node = shutil.which('node') or shutil.which('nodejs')
    if not node:
        raise TestFail('node is not installed (make deps installs nodejs)')
    with open(os.path.join(ctx.workdir, 'server.js'), 'w') as f:
        f.write(NODE_PROG)
    port = free_port()
    prog = Program(ctx, 'node', [node, 'server.js', str(port)])
    want = ' len=%d big=7' % len(NODE_PROG)
    try:
        prog.wait_out(5, 30)
        end = time.monotonic() + 10
        while True:
            try:
                if want in http_get(port).decode(errors='replace'):
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise TestFail('node did not answer before the dump: %s' % prog.out()[-100:])
            time.sleep(0.1)
        prog.dump_restore()
        before = len(prog.out().splitlines())
        prog.wait_out(before + 5, 10)
        numbers(prog.out())
        for i in range(3):
            got = http_get(port).decode(errors='replace')
            m = re.search(r'n=(\d+)', got)
            if want not in got or not m or int(m.group(1)) < before:
                raise TestFail('request %d after the restore got %r (count was %d)' % (i, got[-120:], before))
    finally:
        prog.stop()


TESTS = [Test('prog:bash-loop', t_bash_loop, 60), Test('prog:pipeline', t_pipeline, 60),
         Test('prog:python-multiprocessing', t_python_pool, 90), Test('prog:busybox-httpd', t_httpd, 60),
         Test('prog:node', t_node, 60), Test('prog:java', t_java, 180)]
