# SPDX-License-Identifier: LGPL-2.1-or-later
"""dump --compress (issue 13): page files written as one zstd stream. The
round trip itself is a zdtm workload (mixmem.c, dump_args=--compress);
here: damaged compressed data is refused at restore with one line (both
when the manifest's checksum catches it and when a forger fixed the
checksum, so that only zstd's own content check is left), --lazy refuses
a compressed image, and --print-stats reports the compressed bytes."""
import os

import stasistest as st
from checks import expect_killed, expect_one_line, image_digest
from runner import Test, TestFail
from t_trust import rewrite, variant


def dumped(ctx, extra=('--compress',)):
    w = ctx.workload('mixmem', ['16'])
    img = ctx.path('img')
    ctx.dump(w.pid, img, extra=list(extra))
    expect_killed(w.pid)
    return w, img


def pages_file(img, pid):
    return 'pages-%d.img' % pid


def flipped(img, name):
    with open(os.path.join(img, name), 'rb') as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x40
    return bytes(data)


def refused(ctx, img, pid, what, pattern, binary):
    """restore (of binary) refuses img in one line, leaves no process with
    pid and the image as it was."""
    before = image_digest(img)
    res = ctx.stasis(['restore', '-D', img, '--detach'], binary=binary, timeout=ctx.left(60))
    expect_one_line(res, 'restore of %s' % what, pattern)
    if not st.pid_gone(pid, 3):
        raise TestFail('%s: a process with pid %d is left after the refused restore' % (what, pid))
    if image_digest(img) != before:
        raise TestFail('%s: the refused restore changed the image' % what)


def t_damaged(ctx, binary):
    w, img = dumped(ctx)
    name = pages_file(img, w.pid)
    data = flipped(img, name)
    # As found on disk: the manifest's checksum (or zstd, whichever reads
    # that byte first) catches it.
    d = variant(ctx, img, 'flip')
    with open(os.path.join(d, name), 'r+b') as f:
        f.write(data)
    refused(ctx, d, w.pid, 'a flipped byte in %s' % name, r"'%s'.*damaged" % name, binary)
    # Checksum fixed up: only the decompressor's own checks are left.
    d = variant(ctx, img, 'forged')
    rewrite(d, name, data)
    refused(ctx, d, w.pid, 'a forged %s' % name, r"'%s'.*damaged" % name, binary)
    d = variant(ctx, img, 'truncated')
    with open(os.path.join(img, name), 'rb') as f:
        rewrite(d, name, f.read()[:-100])
    refused(ctx, d, w.pid, 'a truncated %s' % name, r"'%s'.*damaged" % name, binary)


def t_lazy_refused(ctx):
    w, img = dumped(ctx)
    res, _, _ = ctx.restore(img, expect_ok=False, quiet=True, extra=['--lazy'], timeout=ctx.left(30))
    lines = res.err.splitlines()
    if res.rc != 1 or len(lines) != 1 or 'compressed' not in lines[0] or '--lazy' not in lines[0]:
        raise TestFail('restore --lazy of a compressed image: expected one line about compression, got %s'
                       % res.what())
    if not st.pid_gone(w.pid, 3):
        raise TestFail('a process with pid %d is left after the refused lazy restore' % w.pid)
    # and the same image restores eagerly
    res, pid, stdin_w = ctx.restore(img, timeout=ctx.left(60))
    w.pid = pid
    w.set_stdin(stdin_w)
    ctx.fds.remove(stdin_w)
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail(err)


def t_stats(ctx):
    w = ctx.workload('mixmem', ['16'])
    img = ctx.path('img')
    res = ctx.dump(w.pid, img, extra=['--compress=1', '--print-stats'])
    expect_killed(w.pid)
    from t_lazy import stats_of
    s = stats_of(res.out)
    size = os.path.getsize(os.path.join(img, pages_file(img, w.pid)))
    if s.get('bytes_compressed') != size or not 0 < size < s['bytes_written'] * 0.75:
        raise TestFail('--print-stats %s, page file %d bytes: expected bytes_compressed = that, well under '
                       'bytes_written' % (s, size))


def tests(r):
    return [
        Test('compress:damaged', t_damaged, 120, None),
        Test('compress:lazy-refused', t_lazy_refused, 120),
        Test('compress:stats', t_stats, 60),
    ] + ([Test('asan:compress:damaged', t_damaged, 180, r.asan_stasis)] if r.asan_stasis else [])
