# SPDX-License-Identifier: LGPL-2.1-or-later
"""Terminals with real programs: script(1) with its shell session; a tmux server with a counting loop in one
pane and an interactive shell in another, dumped and restored as a tree
(the server and its panes, no client) and driven by tmux's own client
afterwards; and a loop whose fds 0-2 are a terminal outside the tree (the
one stasis runs in), which keeps writing to it after the restore. The
pty kinds themselves are checked by zdtm/pty.c and zdtm/pty_session.c."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import stasistest as st
from runner import Test, TestFail, TestSkip
from checks import expect_alive_unharmed, restore_img_and_pass

LOOP = 'i=0; while :; do i=$((i+1)); echo "n $i"; sleep 0.1; done'


class Tmux:
    def __init__(self, ctx):
        self.bin = shutil.which('tmux')
        if not self.bin:
            raise TestSkip('tmux is not installed (make deps installs it)')
        self.ctx, self.sock = ctx, ctx.path('tmux.sock')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith('TMUX')}
        self.env.update(SHELL='/bin/sh', TERM='xterm', HOME=ctx.workdir, ENV='')
        self.pids = set()

    def run(self, *args, check=True):
        p = subprocess.run([self.bin, '-S', self.sock, '-f', '/dev/null'] + list(args), env=self.env,
                           cwd=self.ctx.workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        if check and p.returncode != 0:
            raise TestFail('tmux %s: rc %d: %s' % (' '.join(args), p.returncode, p.stderr.decode()[-300:]))
        return p.stdout.decode()

    def counter(self):
        """The last number the loop pane shows."""
        nums = re.findall(r'^n (\d+)\s*$', self.run('capture-pane', '-p', '-t', 't:0'), re.M)
        return int(nums[-1]) if nums else None

    def wait_counter(self, above, timeout=5):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = self.counter()
            if n is not None and n > above:
                return n
            time.sleep(0.1)
        raise TestFail('the loop pane shows %s, not more than %s, after %d s' % (self.counter(), above, timeout))

    def stop(self):
        self.run('kill-server', check=False)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def t_tmux(ctx):
    tm = Tmux(ctx)
    try:
        tm.run('new-session', '-d', '-x', '80', '-y', '24', '-s', 't', LOOP)
        tm.run('new-window', '-d', '-t', 't:1', 'sh')
        server = int(tm.run('display-message', '-p', '#{pid}').strip())
        tm.pids = set(st.tree_info(server))
        before = tm.wait_counter(3)
        panes = tm.run('list-panes', '-a', '-F', '#{window_index} #{pane_pid} #{pane_tty}')
        img = ctx.path('img')
        ctx.dump(server, img)
        with open(os.path.join(img, 'manifest.json')) as f:
            tm.pids |= {n['pid'] for n in json.load(f)['tree']}
        for pid in tm.pids:
            if not st.pid_gone(pid, 3):
                raise TestFail('pid %d is still there after the dump' % pid)
        _, pid, _ = ctx.restore(img)
        if pid != server:
            raise TestFail('restore gave pid %s, expected the server %d' % (pid, server))
        after = tm.counter()
        if after is None or after < before:
            raise TestFail('after the restore the loop pane shows %s (%s before the dump)' % (after, before))
        tm.wait_counter(after + 5)
        got = tm.run('list-panes', '-a', '-F', '#{window_index} #{pane_pid} #{pane_tty}')
        if got != panes:
            raise TestFail('panes were %r, after the restore %r' % (panes, got))
        # What `tmux attach` does: a client talks to the server, which
        # types into the pane's terminal and reads it back.
        tm.run('send-keys', '-t', 't:1', 'echo hello-$((6*7))', 'Enter')
        end = time.monotonic() + 5
        while 'hello-42' not in tm.run('capture-pane', '-p', '-t', 't:1').replace('$((6*7))', ''):
            if time.monotonic() > end:
                raise TestFail('the shell pane did not answer: %r' % tm.run('capture-pane', '-p', '-t', 't:1')[-300:])
            time.sleep(0.1)
    finally:
        tm.stop()


def t_script(ctx):
    # script(1) holds the master; the shell it starts leads a session
    # whose controlling terminal is the slave, and the loop's output goes
    # through the pty into the typescript file. Dumped with script as the
    # root, the whole session comes back and the file keeps growing.
    script = shutil.which('script')
    if not script:
        raise TestSkip('script(1) is not installed (make deps installs bsdutils)')
    ts = ctx.path('typescript')
    p = subprocess.Popen([script, '-qfc', LOOP, ts], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, cwd=ctx.workdir)
    pids = set()

    def count():
        try:
            with open(ts, 'rb') as f:
                return [int(x) for x in re.findall(rb'n (\d+)\r\n', f.read())]
        except FileNotFoundError:
            return []
    try:
        end = time.monotonic() + 5
        while len(count()) < 5 and time.monotonic() < end:
            time.sleep(0.05)
        pids = set(st.tree_info(p.pid))
        img = ctx.path('img')
        ctx.dump(p.pid, img)
        p.wait(10)
        with open(os.path.join(img, 'manifest.json')) as f:
            pids |= {n['pid'] for n in json.load(f)['tree']}
        for pid in pids:
            if not st.pid_gone(pid, 3):
                raise TestFail('pid %d is still there after the dump' % pid)
        _, pid, _ = ctx.restore(img)
        n = len(count())
        end = time.monotonic() + 5
        while len(count()) < n + 10 and time.monotonic() < end:
            time.sleep(0.05)
        nums = count()
        if len(nums) < n + 10:
            raise TestFail('the restored session wrote %d lines in 5 s' % (len(nums) - n))
        if nums != list(range(nums[0], nums[0] + len(nums))):
            raise TestFail('the numbers in the typescript are not consecutive: %s' % nums[-30:])
    finally:
        for pid in pids | set(st.tree_info(p.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if p.poll() is None:
            p.kill()
            p.wait()


def t_external_tty(ctx):
    # A loop whose fds 0-2 are a terminal the tree does not own (the one
    # stasis is started from): dumped as external, given the restorer's
    # terminal back, it carries on writing to it with no number lost.
    master, slave = os.openpty()
    out, done = bytearray(), threading.Event()

    def reader():
        while not done.is_set():
            try:
                b = os.read(master, 4096)
            except OSError:
                break
            if not b:
                break
            out.extend(b)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    p = subprocess.Popen(['sh', '-c', LOOP], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         cwd=ctx.workdir)
    try:
        def count():
            return [int(x) for x in re.findall(rb'n (\d+)\r\n', bytes(out))]
        end = time.monotonic() + 5
        while len(count()) < 5 and time.monotonic() < end:
            time.sleep(0.05)
        img = ctx.path('img')
        tree = st.tree_info(p.pid)
        ctx.dump(p.pid, img)
        p.wait(10)
        with open(os.path.join(img, 'manifest.json')) as f:
            tree = set(tree) | {n['pid'] for n in json.load(f)['tree']}
        for pid in tree:  # a killed child holds the session's pid until reaped
            if not st.pid_gone(pid, 3):
                raise TestFail('pid %d is still there after the dump' % pid)
        res = ctx.stasis(['restore', '-D', img, '--detach', '--inherit-fd', '1:0', '--inherit-fd', '2:0'],
                         stdin=slave)
        if res.rc != 0:
            raise TestFail('restore %s' % res.what())
        n = len(count())
        end = time.monotonic() + 5
        while len(count()) < n + 10 and time.monotonic() < end:
            time.sleep(0.05)
        nums = count()
        if len(nums) < n + 10:
            raise TestFail('the restored loop wrote %d lines to the terminal in 5 s' % (len(nums) - n))
        if nums != list(range(nums[0], nums[0] + len(nums))):
            raise TestFail('the numbers on the terminal are not consecutive: %s' % nums[-30:])
        link = os.readlink('/proc/%d/fd/1' % p.pid)
        if link != os.ttyname(slave):
            raise TestFail('the restored loop writes to %s, not to the terminal %s' % (link, os.ttyname(slave)))
    finally:
        for pid in st.tree_info(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        st.pid_gone(p.pid, 3)
        done.set()
        os.close(slave)
        os.close(master)
        t.join(2)


def t_leave_running(ctx, wl):
    # The queues are read by taking the bytes out and putting them back:
    # a dump that lets the tree run on must leave every byte and setting
    # where it was (the workload checks them), and the image restores too.
    w = ctx.workload(wl)
    before = st.snapshot(w.pid)
    img = ctx.path('img')
    ctx.dump(w.pid, img, ['--leave-running'])
    expect_alive_unharmed(w.pid, before, 'dump --leave-running')
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('original after --leave-running: %s' % err)
    restore_img_and_pass(ctx, img, w.pid, w)


TESTS = [Test('prog:tmux', t_tmux, 60), Test('prog:script', t_script, 60),
         Test('term:external-tty', t_external_tty, 60),
         Test('term:leave-running:pty', t_leave_running, 60, 'pty'),
         Test('term:leave-running:pty_session', t_leave_running, 60, 'pty_session')]
