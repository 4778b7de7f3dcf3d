# SPDX-License-Identifier: LGPL-2.1-or-later
"""An image is a program (DESIGN.md §5a): what restore and inspect refuse.
An image others could have written (owner, mode), files that are symlinks
or FIFOs, records that pass the checksum but lie (a chr fd on /etc/shadow,
flags a dump never writes, an exe through '..', a wrong page count, a
robust list the kernel refuses), a user without root's powers, a process
someone already traces. And the rule behind every refusal: exit 1, exactly
one line on stderr, nothing left running, the image untouched -- walked
over the fuzzer's corpus and every fault-injection point."""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import stasistest as st
from runner import Test, TestFail
from checks import (expect_alive_unharmed, expect_killed, expect_one_line, image_digest,
                    restore_img_and_pass)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOBODY = 65534

_xxh = None


def xxh3(data):
    global _xxh
    if _xxh is None:
        _xxh = ctypes.CDLL('libxxhash.so.0')
        _xxh.XXH3_64bits.restype = ctypes.c_uint64
        _xxh.XXH3_64bits.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
    return '%016x' % _xxh.XXH3_64bits(data, len(data))


def rewrite(img, name, data):
    """Writes file name of img and fixes its manifest entry: a forgery that
    passes every checksum."""
    with open(os.path.join(img, name), 'wb') as f:
        f.write(data)
    mp = os.path.join(img, 'manifest.json')
    m = json.load(open(mp))
    for e in m['files']:
        if e['name'] == name:
            e['size'], e['xxh3'] = len(data), xxh3(data)
    with open(mp, 'w') as f:
        json.dump(m, f)


def edit_json(img, name, fn):
    p = os.path.join(img, name)
    j = json.load(open(p))
    j = fn(j) or j
    if name == 'manifest.json':
        with open(p, 'w') as f:
            json.dump(j, f)
    else:
        rewrite(img, name, json.dumps(j).encode())


def dumped(ctx, wl='mem'):
    """A workload dumped (and killed): (workload, pid, image)."""
    w = ctx.workload(wl)
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    return w, w.pid, img


def refused(ctx, img, pid, what, pattern=None, cmd='restore'):
    """cmd at the default verbosity refuses img in one line, leaves no
    process with pid and the image as it was."""
    before = image_digest(img)
    if cmd == 'restore':
        res, _, _ = ctx.restore(img, expect_ok=False, quiet=True, timeout=ctx.left(20))
    else:
        res = ctx.stasis(['inspect', img], timeout=ctx.left(20))
    line = expect_one_line(res, '%s of %s' % (cmd, what), pattern)
    if pid and not st.pid_gone(pid, 3):
        raise TestFail('%s: a process with pid %d is left after the refused restore' % (what, pid))
    if image_digest(img) != before:
        raise TestFail('%s: the refused %s changed the image' % (what, cmd))
    return line


def variant(ctx, img, tag):
    d = ctx.path('v-%s' % tag)
    shutil.copytree(img, d, symlinks=True)
    return d


# --- 1. owner and mode -------------------------------------------------------

def t_owner_mode(ctx):
    w, pid, img = dumped(ctx)
    core = 'core-%d.json' % pid
    cases = (
        ('dir-0777', lambda d: os.chmod(d, 0o777), r'mode 0777'),
        ('dir-group-writable', lambda d: os.chmod(d, 0o770), r'mode 0770'),
        ('dir-of-nobody', lambda d: os.chown(d, NOBODY, NOBODY), r'uid %d' % NOBODY),
        ('file-0666', lambda d: os.chmod(os.path.join(d, core), 0o666), core + r".*mode 0666"),
        ('file-of-nobody', lambda d: os.chown(os.path.join(d, core), NOBODY, NOBODY), core + r".*uid %d" % NOBODY),
        ('manifest-0622', lambda d: os.chmod(os.path.join(d, 'manifest.json'), 0o622), r'manifest.json.*0622'),
    )
    for tag, fn, pat in cases:
        d = variant(ctx, img, tag)
        fn(d)
        for cmd in ('restore', 'inspect'):
            refused(ctx, d, pid, tag, pat, cmd)
    restore_img_and_pass(ctx, img, pid, w)


def t_links_fifos(ctx):
    w, pid, img = dumped(ctx)
    secret = ctx.path('secret')
    with open(secret, 'w') as f:
        f.write('topsecretword: must not appear\n')
    pages = 'pages-%d.img' % pid
    core = 'core-%d.json' % pid

    def swap(d, name, how):
        p = os.path.join(d, name)
        os.unlink(p)
        if how == 'fifo':
            os.mkfifo(p, 0o600)
        else:
            os.symlink(secret, p)
    for name in ('manifest.json', core, pages):
        for how in ('fifo', 'symlink'):
            tag = '%s-%s' % (name, how)
            d = variant(ctx, img, tag)
            swap(d, name, how)
            for cmd in ('restore', 'inspect'):
                line = refused(ctx, d, pid, tag, r'%s.*(FIFO|symbolic link)' % name.replace('.', r'\.'), cmd)
                if 'topsecret' in line:
                    raise TestFail('%s: the target of the link shows in the error: %s' % (tag, line))
    restore_img_and_pass(ctx, img, pid, w)


# --- 2. records that lie -----------------------------------------------------

def add_fd(rec, fds, **kw):
    """An fd record appended to the fds list, on a free fd and description."""
    fd = max([o['fd'] for o in fds] + [10]) + 7
    desc = max([o['desc'] for o in fds] + [0]) + 100
    o = {'fd': fd, 'kind': 'reg', 'path': '/dev/null', 'flags': 0o100000, 'pos': 0, 'desc': desc}
    o.update(kw)
    fds.append(o)
    return fds


def t_forged(ctx):
    w, pid, img = dumped(ctx)
    fifo, link = ctx.path('a-fifo'), ctx.path('a-link')
    os.mkfifo(fifo, 0o600)
    os.symlink('/etc/hostname', link)
    fds, mm, core = 'fds-%d.json' % pid, 'mm-%d.json' % pid, 'core-%d.json' % pid
    wronly_trunc = 0o100000 | 0o1000 | os.O_WRONLY

    def thread0(k, v):
        def f(j):
            j['threads'][0][k] = v
        return f

    def mset(k, v):
        def f(j):
            j[k] = v
        return f
    cases = (
        ('chr-shadow', fds, lambda j: add_fd(None, j, kind='chr', path='/etc/shadow'), r'fds'),
        ('chr-wrong-rdev', fds, lambda j: add_fd(None, j, kind='chr', path='/dev/null', rdev=(1 << 8) | 5), r'fds'),
        ('reg-shadow-trunc', fds, lambda j: add_fd(None, j, path='/etc/shadow', flags=wronly_trunc), r'fds'),
        ('reg-dotdot', fds, lambda j: add_fd(None, j, path='/tmp/../etc/shadow'), r'fds'),
        ('reg-is-fifo', fds, lambda j: add_fd(None, j, path=fifo), r'FIFO'),
        ('reg-is-symlink', fds, lambda j: add_fd(None, j, path=link), r'symbolic link'),
        ('reg-is-device', fds, lambda j: add_fd(None, j, path='/dev/zero'), r'character device'),
        ('fifo-is-file', fds, lambda j: add_fd(None, j, kind='pipe', path='/etc/hostname', flags=2,
                                              pipe_id=424242, pipe_size=65536, anon='0' * 112),
         r'not a FIFO'),
        ('exe-dotdot', mm, mset('exe', '../../../bin/sh'), r'mm'),
        ('exe-relative', mm, mset('exe', 'bin/sh'), r'mm'),
        ('mm-pages', mm, lambda j: j.update(pages=j['pages'] + 1), r'pages'),
        ('robust-len', core, thread0('robust_len', 16), r'core'),
        ('cwd-dotdot', core, mset('cwd', '/tmp/..'), r'core'),
        ('manifest-pages-negative', 'manifest.json', mset('pages', -1), r'pages'),
        ('manifest-pages-wrong', 'manifest.json', lambda j: j.update(pages=j['pages'] + 1), r'pages'),
    )
    for tag, name, fn, pat in cases:
        d = variant(ctx, img, tag)
        edit_json(d, name, fn)
        refused(ctx, d, pid, tag, pat)
    restore_img_and_pass(ctx, img, pid, w)


# --- 4. messages --------------------------------------------------------------

def as_nobody(ctx, args):
    return st.run_cmd(
        ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY, '--clear-groups', ctx.r.stasis] + args,
        timeout=ctx.left(20), cwd='/')


def t_nobody(ctx):
    w = ctx.workload('mem')
    before = st.snapshot(w.pid)
    pat = r'needs root.*CAP_SYS_PTRACE'
    expect_one_line(as_nobody(ctx, ['dump', '--type', 'process', '--pid', str(w.pid), '-D', '/tmp/stasis-nobody-%d'
                                     % os.getpid()]), 'dump as nobody', pat)
    if os.path.exists('/tmp/stasis-nobody-%d' % os.getpid()):
        raise TestFail('dump as nobody left /tmp/stasis-nobody-%d' % os.getpid())
    expect_alive_unharmed(w.pid, before, 'the refused dump')
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    # an image of nobody's own, so that only the missing powers stop it
    mine = ctx.path('nobody-img')
    shutil.copytree(img, mine)
    for p in [mine] + [os.path.join(mine, f) for f in os.listdir(mine)]:
        os.chown(p, NOBODY, NOBODY)
    os.chmod(ctx.dir, 0o755)
    expect_one_line(as_nobody(ctx, ['restore', '-D', mine, '--detach']), 'restore as nobody', pat)
    restore_img_and_pass(ctx, img, w.pid, w)


TRACER = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:   # PTRACE_SEIZE
    print('seize failed', ctypes.get_errno(), flush=True); sys.exit(1)
print('ready', flush=True)
sys.stdin.read()   # hold it until our stdin closes; exiting detaches
'''


def t_traced(ctx):
    w = ctx.workload('mem')
    before = st.snapshot(w.pid)
    tr = subprocess.Popen([sys.executable, '-c', TRACER, str(w.pid)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    try:
        if tr.stdout.readline().strip() != 'ready':
            raise TestFail('the test tracer could not attach to pid %d' % w.pid)
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(w.pid), '-D', ctx.path('img')])
        expect_one_line(res, 'dump of a traced process', r'traced by pid %d \(python3' % tr.pid)
    finally:
        tr.stdin.close()
        tr.wait(10)
    if os.path.exists(os.path.join(ctx.path('img'), 'manifest.json')):
        raise TestFail('the refused dump left an image')
    expect_alive_unharmed(w.pid, before, 'the refused dump')
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail('after the refused dump: %s' % err)


# --- 3. one line per failure: the fuzzer's corpus and the injection points ----

def corpus_variant(img, pid, data):
    """Puts one corpus input into img, where its reader would find it.
    Returns False for an input of no reader restore uses."""
    kind, body = data[0], data[1:]
    if kind == 0:
        with open(os.path.join(img, 'manifest.json'), 'wb') as f:
            f.write(body)
        return True
    if kind == 1 and len(body) >= 8:
        size = int.from_bytes(body[:8], 'little')
        rewrite(img, 'pagemap-%d.img' % pid, body[8:])
        pages = os.path.join(img, 'pages-%d.img' % pid)
        if size <= 64 << 20:
            with open(pages, 'rb') as f:
                have = f.read()
            rewrite(img, 'pages-%d.img' % pid, (have + bytes(size))[:size])
        return True
    if kind != 2 or len(body) < 1:
        return False
    try:
        j = json.loads(body[1:])
    except ValueError:
        return False
    sel = body[0] % 10
    core, mm, fds = 'core-%d.json' % pid, 'mm-%d.json' % pid, 'fds-%d.json' % pid
    if sel == 1:
        rewrite(img, mm, json.dumps(j).encode())
    elif sel == 2:
        rewrite(img, fds, json.dumps(j).encode())
    elif sel == 0:
        edit_json(img, core, lambda c: c['threads'].__setitem__(0, j))
    elif sel in (3, 4, 6, 7) and isinstance(j, dict):
        edit_json(img, core, lambda c: c.update(j))
    elif sel == 8:
        edit_json(img, 'manifest.json', lambda m: m.update(tree=j))
    else:
        return False
    return True


def t_oneline_corpus(ctx):
    w, pid, img = dumped(ctx)
    corpus = os.path.join(ROOT, 'fuzz', 'corpus')
    walked = 0
    for name in sorted(os.listdir(corpus)):
        data = open(os.path.join(corpus, name), 'rb').read()
        if not data:
            continue
        d = variant(ctx, img, 'corpus-' + name)
        if not corpus_variant(d, pid, data):
            continue
        walked += 1
        before = image_digest(d)
        res, rpid, _ = ctx.restore(d, expect_ok=False, quiet=True, timeout=ctx.left(20))
        if res.rc == 0:  # an input that happens to fit this image: fine, if it runs
            st.kill_reap(rpid)
            if not st.pid_gone(pid, 3):
                raise TestFail('corpus %s: pid %d not free after the restore that worked' % (name, pid))
            continue
        expect_one_line(res, 'restore with corpus %s' % name)
        if not st.pid_gone(pid, 3):
            raise TestFail('corpus %s: a process with pid %d is left after the failed restore' % (name, pid))
        if image_digest(d) != before:
            raise TestFail('corpus %s: the failed restore changed the image' % name)
        expect_one_line(ctx.stasis(['inspect', d], timeout=ctx.left(20)), 'inspect with corpus %s' % name) \
            if name.startswith('manifest') else None
        shutil.rmtree(d)
    if walked < 20:
        raise TestFail('only %d corpus inputs were walked' % walked)
    restore_img_and_pass(ctx, img, pid, w)


def inject_points():
    """Every inject_fail("...") in src/."""
    import re
    pts = set()
    for dp, _, files in os.walk(os.path.join(ROOT, 'src')):
        for f in files:
            if f.endswith('.c'):
                pts.update(re.findall(r'inject_fail\("([^"]+)"\)', open(os.path.join(dp, f)).read()))
    return sorted(pts)


def t_oneline_inject(ctx):
    w = ctx.workload('threads')
    pid = w.pid
    img = ctx.path('img')
    points = inject_points()
    if not points:
        raise TestFail('no inject_fail points found in src/')
    for p in [p for p in points if p.startswith('dump:')]:
        before = st.snapshot(pid)
        res = ctx.stasis(['dump', '--type', 'process', '--pid', str(pid), '-D', img],
                         env={'STASIS_INJECT_FAIL': p})
        expect_one_line(res, 'dump with %s injected' % p, p)
        expect_alive_unharmed(pid, before, 'the failed dump at %s' % p)
        if os.path.exists(img) and os.listdir(img):
            raise TestFail('the failed dump at %s left files: %s' % (p, os.listdir(img)))
    ctx.dump(pid, img)
    expect_killed(pid)
    # STASIS_FILL_UFFD=1: the eager fill's userfaultfd (and its point)
    # for this small process too, where by default only 8 MiB or more of
    # pages take it.
    for p in [p for p in points if not p.startswith('dump:')]:
        before = image_digest(img)
        res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': p, 'STASIS_FILL_UFFD': '1'}, expect_ok=False,
                                quiet=True)
        expect_one_line(res, 'restore with %s injected' % p, p)
        if not st.pid_gone(pid, 3):
            raise TestFail('a process with pid %d is left after the failure at %s' % (pid, p))
        if image_digest(img) != before:
            raise TestFail('the failure at %s changed the image' % p)
    restore_img_and_pass(ctx, img, pid, w)


TESTS = [
    Test('trust:owner-mode', t_owner_mode, 120),
    Test('trust:links-fifos', t_links_fifos, 120),
    Test('trust:forged', t_forged, 180),
    Test('trust:nobody', t_nobody, 60),
    Test('trust:traced', t_traced, 60),
    Test('oneline:corpus', t_oneline_corpus, 300),
    Test('oneline:inject', t_oneline_inject, 120),
]
