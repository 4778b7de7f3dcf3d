# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers shared by tests/run.py and bench/bench.py (Python 3 stdlib only).

Process handling: the caller makes itself a child subreaper, so restored
processes (orphaned when `stasis restore --detach` exits) become its
children; everything it started is killed by pid and reaped, never by name.
"""
import ctypes
import errno
import os
import shutil
import re
import signal
import subprocess
import time

PR_SET_CHILD_SUBREAPER = 36


def make_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_CHILD_SUBREAPER)')


def proc_state(pid):
    """State letter from /proc/PID/stat, or None when there is no such pid."""
    try:
        with open('/proc/%d/stat' % pid, errors='replace') as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(')') + 2]


def proc_ppid(pid):
    try:
        with open('/proc/%d/stat' % pid, errors='replace') as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(')') + 2:].split()[1])


def my_children():
    """Pids whose parent is this process (from /proc)."""
    me = os.getpid()
    out = []
    for name in os.listdir('/proc'):
        if name.isdigit() and proc_ppid(int(name)) == me:
            out.append(int(name))
    return out


def try_reap(pid):
    """Reaps pid if it exited. Returns its wait status, or None."""
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if wpid == pid else None


def wait_pid(pid, timeout):
    """Waits for our child pid to exit; returns the wait status or None on
    timeout (the process is left as it is)."""
    end = time.monotonic() + timeout
    while True:
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 'not-a-child'
        if wpid == pid:
            return status
        if time.monotonic() > end:
            return None
        time.sleep(0.005)


def describe_status(status):
    if status is None:
        return 'still running'
    if status == 'not-a-child':
        return 'not our child'
    if os.WIFEXITED(status):
        return 'exit %d' % os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return 'killed by %s' % signal.Signals(sig).name
        except ValueError:
            return 'killed by signal %d' % sig
    return 'status %#x' % status


def kill_reap(pid, timeout=5):
    """SIGKILLs pid if it is our child (checked via /proc), and reaps it."""
    if proc_ppid(pid) != os.getpid():
        try_reap(pid)
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_pid(pid, timeout)


def kill_reap_all_children(exclude=()):
    for _ in range(3):
        kids = [p for p in my_children() if p not in exclude]
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in kids:
            wait_pid(pid, 5)


def end_run(w, fds, *dirs):
    """The end of one benchmark run, whatever happened: the workload w
    killed and reaped, the fds closed, every child reaped, the
    directories removed."""
    if w.pid:
        kill_reap(w.pid)
    w.close()
    for fd in fds:
        os.close(fd)
    kill_reap_all_children()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def reap_zombie_children(exclude=()):
    """Reaps children of ours that are zombies (orphans adopted by us), but
    not those in exclude (whose exit status the caller wants)."""
    for pid in my_children():
        if pid not in exclude and proc_state(pid) == 'Z':
            try_reap(pid)


def proc_sid(pid):
    try:
        with open('/proc/%d/stat' % pid, errors='replace') as f:
            return int(f.read().rsplit(')', 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def tree_info(root):
    """{pid: (ppid, pgid, sid, zombie)} for root and its descendants."""
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            with open('/proc/%d/stat' % pid, errors='replace') as f:
                rest = f.read().rsplit(')', 1)[1].split()
            out[pid] = (int(rest[1]), int(rest[2]), int(rest[3]), rest[0] == 'Z')
            for tid in os.listdir('/proc/%d/task' % pid):
                with open('/proc/%d/task/%s/children' % (pid, tid)) as f:
                    todo += [int(x) for x in f.read().split()]
        except (OSError, IndexError, ValueError):
            continue
    return out


def pid_gone(pid, timeout=3.0):
    """True when no process (not even a zombie) has this pid, reaping adopted
    zombies on the way."""
    end = time.monotonic() + timeout
    while True:
        reap_zombie_children()
        if proc_state(pid) is None:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


# --- /proc snapshots -------------------------------------------------------

STATUS_FIELDS = ('Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb',
                 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'SigBlk', 'SigIgn', 'SigCgt',
                 'Threads', 'Umask')
EXTERNAL_FD = re.compile(r'^(pipe:|socket:|/dev/pts/|/dev/tty|/dev/console|/dev/ptmx)')


def read_maps(pid):
    """/proc/PID/maps as a list of (start, end, perms, offset, dev, inode,
    path), adjacent entries merged when perms, file and offset continuity
    allow (a mapping split differently is the same memory)."""
    out = []
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split('-'))
            perms, off, dev, inode = parts[1], int(parts[2], 16), parts[3], int(parts[4])
            path = parts[5].strip() if len(parts) > 5 else ''
            if out:
                p = out[-1]
                cont = (p[1] == start and p[2] == perms and p[4] == dev and p[5] == inode and p[6] == path
                        and (off == p[3] + (p[1] - p[0]) or (inode == 0 and off == 0 and p[3] == 0)))
                if cont:
                    out[-1] = (p[0], end, p[2], p[3], p[4], p[5], p[6])
                    continue
            out.append((start, end, perms, off, dev, inode, path))
    return out


def read_status(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in STATUS_FIELDS:
                out[k] = ' '.join(v.split())
    return out


def read_fds(pid):
    """{fd: (link, flags, pos)} for the fds that are not external (pipes,
    sockets, ttys)."""
    out = {}
    base = '/proc/%d/fd' % pid
    for name in os.listdir(base):
        try:
            link = os.readlink('%s/%s' % (base, name))
            with open('/proc/%d/fdinfo/%s' % (pid, name)) as f:
                info = dict(l.split(':', 1) for l in f.read().splitlines() if ':' in l)
        except FileNotFoundError:
            continue
        if EXTERNAL_FD.match(link):
            continue
        out[int(name)] = (link, info.get('flags', '').strip(), info.get('pos', '').strip())
    return out


def thread_calls(pid):
    """{tid: number of the system call the thread is blocked in, or None
    when it runs or is not in one} (/proc/PID/task/TID/syscall)."""
    out = {}
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return out
    for t in tids:
        try:
            with open('/proc/%d/task/%s/syscall' % (pid, t)) as f:
                first = f.read().split(None, 1)
        except OSError:
            continue
        nr = int(first[0]) if first and first[0].isdigit() else None
        # A call that faults on a page a lazy restore has not filled yet
        # (sigsuspend reading its mask from the stack) has not done its
        # work yet: not back in it.
        if nr is not None and thread_wchan(pid, t) == 'handle_userfault':
            nr = None
        out[int(t)] = nr
    return out


def thread_wchan(pid, tid):
    try:
        with open('/proc/%d/task/%s/wchan' % (pid, tid)) as f:
            return f.read().strip()
    except OSError:
        return ""


def wait_blocked(pid, timeout=2.0):
    """Waits until pid's main thread is blocked in a system call: a
    workload that printed READY is then in its wait (test_wait's
    sigsuspend, with its temporary mask), not on the way to it. Returns
    whether it got there; a workload that never blocks costs the timeout."""
    end = time.monotonic() + timeout
    while thread_calls(pid).get(pid) is None:
        if time.monotonic() > end or proc_state(pid) in (None, 'Z', 'X'):
            return False
        time.sleep(0.002)
    return True


def wait_back_in_calls(pid, before, timeout=10.0):
    """Waits until every thread that the `before` snapshot found blocked in
    a system call is blocked in a call again. A restored or put back
    thread resumes at the call's instruction and enters the call when it
    first runs (later still when its stack page comes lazily); until then
    /proc shows what the thread has outside the call, e.g. its own signal
    mask instead of sigsuspend's temporary one. Any call will do: a sleep
    goes on in restart_syscall, and a call may also have returned as it
    should (a short sleep) and the thread moved on to its next. Returns
    whether all are; the caller compares either way."""
    want = [t for t, nr in before.get('calls', {}).items() if nr is not None]
    end = time.monotonic() + timeout
    while True:
        now = thread_calls(pid)
        if all(t not in now or now[t] is not None for t in want):
            return True
        if time.monotonic() > end or proc_state(pid) in (None, 'Z', 'X'):
            return False
        time.sleep(0.005)


def snapshot(pid):
    """What compare_snapshots compares, and (not compared) the calls the
    threads are blocked in, for wait_back_in_calls."""
    return {'maps': read_maps(pid), 'status': read_status(pid), 'fds': read_fds(pid),
            'calls': thread_calls(pid)}


def _fmt_map(m):
    return '%x-%x %s %x %s %d %s' % m


def _map_key(m):
    # dev:inode of anonymous shared memory and deleted files cannot survive
    # a restore (new shmem inode / recreated file); everything else must.
    if m[6].endswith('(deleted)') or m[6].startswith(('/SYSV', '/memfd:')) or m[5] == 0:
        return (m[0], m[1], m[2], m[3], m[6])
    return m


def compare_snapshots(before, after, limit=6):
    """A list of human readable differences (empty when equal)."""
    diffs = []
    bm = [_map_key(m) for m in before['maps']]
    am = [_map_key(m) for m in after['maps']]
    if bm != am:
        bset, aset = set(bm), set(am)
        bi = {_map_key(m): m for m in before['maps']}
        ai = {_map_key(m): m for m in after['maps']}
        for m in bm:
            if m not in aset:
                diffs.append('maps: lost %s' % _fmt_map(bi[m]))
        for m in am:
            if m not in bset:
                diffs.append('maps: new %s' % _fmt_map(ai[m]))
        if not diffs:
            diffs.append('maps: order differs')
    for k in STATUS_FIELDS:
        b, a = before['status'].get(k), after['status'].get(k)
        if b != a:
            diffs.append('status %s: %r -> %r' % (k, b, a))
    bf, af = before['fds'], after['fds']
    for fd in sorted(set(bf) | set(af)):
        if fd not in af:
            diffs.append('fd %d lost (%s)' % (fd, bf[fd][0]))
        elif fd not in bf:
            diffs.append('fd %d new (%s)' % (fd, af[fd][0]))
        elif bf[fd] != af[fd]:
            diffs.append('fd %d: %s flags %s pos %s -> %s flags %s pos %s' % ((fd,) + bf[fd] + af[fd]))
    if len(diffs) > limit:
        diffs = diffs[:limit] + ['... %d more' % (len(diffs) - limit)]
    return diffs


# --- running commands ------------------------------------------------------

SANITIZER_RE = re.compile(r'(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Traceback \(most recent|'
                          r'Segmentation fault|core dumped)')


class CmdResult:
    def __init__(self, args, rc, out, err, elapsed, timed_out):
        self.args, self.rc, self.out, self.err = args, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    def last_err(self):
        lines = [l for l in self.err.splitlines() if l.strip()]
        return lines[-1] if lines else '(no stderr)'

    def what(self):
        """'exit N: last stderr line' / 'killed by SIG...' / 'timed out'."""
        if self.timed_out:
            return 'timed out after %.0f s' % self.elapsed
        if self.rc < 0:
            try:
                return 'killed by %s: %s' % (signal.Signals(-self.rc).name, self.last_err())
            except ValueError:
                return 'killed by signal %d' % -self.rc
        return 'exit %d: %s' % (self.rc, self.last_err())

    def sanitizer_report(self):
        m = SANITIZER_RE.search(self.err)
        if not m:
            return None
        line = self.err[m.start():].splitlines()[0]
        return line[:200]


def run_cmd(args, timeout=60, env=None, stdin=subprocess.DEVNULL, cwd=None):
    """Runs a command capturing stdout/stderr; kills it by pid on timeout."""
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    except OSError as e:
        return CmdResult(args, 127, '', 'cannot run %s: %s' % (args[0], e.strerror), 0.0, False)
    try:
        out, err = p.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        timed_out = True
    return CmdResult(args, p.returncode, out.decode(errors='replace'), err.decode(errors='replace'),
                     time.monotonic() - t0, timed_out)


# --- workloads -------------------------------------------------------------

class Workload:
    """A ZDTM workload started with cwd = workdir, stdout+stderr appended to
    workdir/../NAME.log, stdin a pipe whose write end we hold."""

    def __init__(self, binary, args, workdir, logpath, env=None):
        self.binary, self.args, self.workdir, self.logpath = os.path.abspath(binary), list(args), workdir, logpath
        self.env = env
        self.pid = None
        self.stdin_w = None
        self.popen = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError('workload not built: %s' % self.binary)
        logfd = os.open(self.logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        r, w = os.pipe()
        try:
            self.popen = subprocess.Popen([self.binary] + self.args, cwd=self.workdir, stdin=r, stdout=logfd,
                                          stderr=logfd, env=self.env)
        finally:
            os.close(r)
            os.close(logfd)
        self.pid = self.popen.pid
        self.popen.returncode = 0  # we reap it ourselves with os.waitpid
        self.stdin_w = w
        return self

    def log(self):
        try:
            with open(self.logpath, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def log_tail(self, n=3):
        lines = [l for l in self.log().splitlines() if l.strip()]
        return ' | '.join(lines[-n:])

    def log_offset_caught_up(self):
        """Whether the workload's fd 1 (the log) is at the log's end. A
        write's bytes show in the file before the kernel moves the writer's
        offset, so READY can be read while fdinfo still has the offset of
        before its last write (puts on an unbuffered stdout writes "READY"
        and "\\n" apart): a snapshot then would see the offset move."""
        try:
            if os.readlink('/proc/%d/fd/1' % self.pid) != os.path.realpath(self.logpath):
                return True
            with open('/proc/%d/fdinfo/1' % self.pid) as f:
                pos = int(re.search(r'^pos:\s*(\d+)', f.read(), re.M).group(1))
            return pos >= os.path.getsize(self.logpath)
        except (OSError, AttributeError):
            return True

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        seen = None  # when READY was first read
        while True:
            if seen is None and 'READY\n' in self.log():
                seen = time.monotonic()
            # Bounded: another writer of the log may keep it moving.
            if seen is not None and (self.log_offset_caught_up() or time.monotonic() > seen + 2):
                return
            st = try_reap(self.pid) if proc_ppid(self.pid) == os.getpid() else None
            if st is not None or proc_state(self.pid) in (None, 'Z'):
                raise RuntimeError('workload died before READY (%s): %s' % (describe_status(st), self.log_tail()))
            if time.monotonic() > end:
                raise RuntimeError('workload not READY after %d s: %s' % (timeout, self.log_tail()))
            time.sleep(0.01)

    def set_stdin(self, w):
        if self.stdin_w is not None:
            os.close(self.stdin_w)
        self.stdin_w = w

    def close(self):
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def finish_restored(self, pid, what, timeout=20):
        """Sends SIGUSR1 to a restored copy of this workload that is not our
        child (pid: a --pidns restore's outer pid, or a restored process)
        and returns None when it wrote PASS to the shared log and exited,
        else the reason."""
        start = len(self.log())
        os.kill(pid, signal.SIGUSR1)
        if not pid_gone(pid, timeout):
            return 'the restored %s did not finish' % what
        if 'PASS' not in self.log()[start:]:
            return 'the restored %s did not pass: %r' % (what, self.log()[start:][-300:])
        return None

    def finish(self, timeout=30, stdin_line=None):
        """Optionally writes stdin_line, sends SIGUSR1, waits for the exit and
        returns None when the workload passed, else the reason."""
        start = len(self.log())
        if stdin_line is not None:
            os.write(self.stdin_w, stdin_line.encode())
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return 'process %d is gone before SIGUSR1' % self.pid
        st = wait_pid(self.pid, timeout)
        after = self.log()[start:]
        result = [l for l in after.splitlines() if l.startswith(('PASS', 'FAIL'))]
        if st is None:
            return 'no exit %d s after SIGUSR1: %s' % (timeout, self.log_tail())
        if st == 'not-a-child':
            return 'process %d is not our child (cannot get its exit status)' % self.pid
        if result and result[-1].startswith('FAIL'):
            return 'workload %s (%s)' % (result[-1], describe_status(st))
        if not (os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0) or result != ['PASS']:
            return 'workload %s: %s' % (describe_status(st), self.log_tail())
        return None
