#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Container benchmark: Docker and Podman containers dumped and restored as
new ones, side by side.

    python3 bench/containers.py --build build [--runs 5] [--mib 256] [--dir /var/tmp]
                                [--engines docker,podman] [--cases redis,memhog]

Starts a dockerd and a Podman root of its own (as the tests do: own data
roots, sockets and network, stopped and removed at the end), imports into
each a busybox image with bench/memhog in it and the Redis image of the
tests (Debian's redis-server and its libraries), and for two containers
-- Redis with two I/O threads and 20,000 keys, and memhog holding --mib
MiB of touched memory -- times `stasis dump --type docker|podman` (until it
returns; the container is stopped) and `stasis restore --id NEW` (until the
new container runs the restored tree). Prints per container and engine
the median, min and max of --runs runs, the image's page data, and as in
bench/bench.py the references for the same bytes measured in the same
run: `cp` of the page files (dump) and memcpy (bench/memcpy_bw, restore),
and the ratios to them.
Every restored container is checked (Redis: all keys, same run_id; memhog:
still running) and removed. The images go to a directory under --dir.
"""
import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'tests', 'lib'))
sys.path.insert(0, os.path.join(here, '..', 'tests'))
import stasistest as st  # noqa: E402
import ctrcases as cc  # noqa: E402
import dockerd  # noqa: E402
import t_podman  # noqa: E402
from engines import DockerEngine, PodmanEngine  # noqa: E402
from runner import TestFail, TestSkip  # noqa: E402

BENCH_IMAGE = 'stasis-bench:1'


class Ctx:
    """What ctrcases and the engines need of a test's context."""

    def __init__(self, build, where):
        self.dir = tempfile.mkdtemp(prefix='stasis-bench-ct-', dir=where)
        self.r = type('R', (), {'stasis': os.path.join(build, 'stasis')})()

    def path(self, *p):
        return os.path.join(self.dir, *p)


def vm_rss_mib(host_pid):
    with open('/proc/%d/status' % host_pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) >> 10
    return 0


class Redis:
    name = 'redis-20k'
    image = cc.REDIS_IMAGE
    args = cc.REDIS_ARGS

    def prepare(self, eng, cid):
        self.rid = cc.redis_fill(eng.ip(cid))

    def check(self, eng, cid):
        cc.redis_check(eng.ip(cid), self.rid)


class Memhog:
    image = BENCH_IMAGE

    def __init__(self, mib):
        self.mib, self.name, self.args = mib, 'memhog-%dM' % mib, ('memhog', str(mib))

    def prepare(self, eng, cid):
        """Until memhog has touched all its memory."""
        end, pid = time.monotonic() + 120, eng.pid(cid)
        while vm_rss_mib(pid) < self.mib:
            if time.monotonic() > end:
                raise TestFail('memhog touched only %d MiB' % vm_rss_mib(pid))
            time.sleep(0.2)

    def check(self, eng, cid):
        if not eng.running(cid):
            raise TestFail('the restored memhog container is not running')


def page_refs(ctx, img):
    """(MiB of page data in the image, seconds to cp those files, seconds of
    memcpy of as many bytes)."""
    pages = [os.path.join(img, f) for f in os.listdir(img) if f.startswith('pages-')]
    nbytes = sum(os.path.getsize(p) for p in pages)
    t0 = time.monotonic()
    for p in pages:
        shutil.copyfile(p, p + '.cp')
    cp_s = time.monotonic() - t0
    for p in pages:
        os.unlink(p + '.cp')
    m = st.run_cmd([os.path.join(os.path.dirname(ctx.r.stasis), 'bench', 'memcpy_bw'),
                    str(max(1, math.ceil(nbytes / (1 << 20)))), '1'], timeout=120)
    if m.rc != 0:
        raise TestFail('memcpy_bw %s' % m.what())
    return nbytes / (1 << 20), cp_s, float(m.out.split()[3])


def one(ctx, eng, case):
    """One dump and restore of case on eng: {dump, restore, mib, cp, memcpy}."""
    name, new = 'stasis-bench-a-%d' % os.getpid(), 'stasis-bench-b-%d' % os.getpid()
    img = ctx.path('img')
    shutil.rmtree(img, ignore_errors=True)
    eng.remove(name, new)
    try:
        eng.run(name, case.image, *case.args)
        case.prepare(eng, name)
        t0 = time.monotonic()
        eng.dump(ctx, name, img)
        dump_s = time.monotonic() - t0
        eng.remove(name)
        t0 = time.monotonic()
        eng.restore(ctx, img, new)
        restore_s = time.monotonic() - t0
        case.check(eng, new)
        mib, cp_s, memcpy_s = page_refs(ctx, img)
        return {'dump': dump_s, 'restore': restore_s, 'mib': mib, 'cp': cp_s, 'memcpy': memcpy_s}
    finally:
        eng.remove(name, new)


def engine(ctx, kind, build):
    """An engine of its own for the run, with both images; returns (engine,
    its stop function)."""
    if kind == 'docker':
        d = dockerd.Dockerd(ctx.dir)
        eng, stop = DockerEngine(d), d.stop
        d.wait_up()
    else:
        p = t_podman.Podman()
        eng, stop = PodmanEngine(p), p.remove
    try:
        rootfs = ctx.path('rootfs-bench')
        dockerd.busybox_rootfs(rootfs)
        shutil.copy(os.path.join(build, 'bench', 'memhog'), os.path.join(rootfs, 'bin', 'memhog'))
        eng.import_dir(rootfs, BENCH_IMAGE)
        shutil.rmtree(rootfs)
        cc.import_redis(ctx, eng)
    except BaseException:
        stop()
        raise
    return eng, stop


def row(case, kind, runs):
    def col(key):
        v = [r[key] for r in runs]
        return '%7.3f (%6.3f-%6.3f)' % (statistics.median(v), min(v), max(v))

    def ratio(a, b):
        # per run, then the median: stasis and the copy in the same run
        return statistics.median(r[a] / max(r[b], 1e-6) for r in runs)
    med = {k: statistics.median(r[k] for r in runs) for k in ('mib', 'cp', 'memcpy')}
    return '%-12s %-6s %4d | %s | %s | %8.1f %7.3f %8.3f | %7.0f %8.0f' % (
        case.name, kind, len(runs), col('dump'), col('restore'), med['mib'], med['cp'], med['memcpy'],
        ratio('dump', 'cp'), ratio('restore', 'memcpy'))


def bench(ctx, opts, kinds, cases):
    """Runs every case on every engine; returns the table's rows."""
    results = {}
    for kind in kinds:
        eng, stop = engine(ctx, kind, opts.build)
        try:
            for case in cases:
                results[case.name, kind] = [one(ctx, eng, case) for _ in range(opts.runs)]
        finally:
            stop()
            st.kill_reap_all_children()
    return [row(c, k, results[c.name, k]) for c in cases for k in kinds]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--mib', type=int, default=256)
    ap.add_argument('--dir', default='/var/tmp', help='where the images go (a disk, as users keep them)')
    ap.add_argument('--engines', default='docker,podman')
    ap.add_argument('--cases', default='redis,memhog')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    st.make_subreaper()
    ctx = Ctx(opts.build, opts.dir)
    all_cases = {'redis': Redis(), 'memhog': Memhog(opts.mib)}
    cases = [all_cases[c] for c in opts.cases.split(',')]
    try:
        rows = bench(ctx, opts, opts.engines.split(','), cases)
    except (TestSkip, TestFail) as e:
        print('containers.py: %s' % e)
        return 1
    finally:
        shutil.rmtree(ctx.dir, ignore_errors=True)
        st.kill_reap_all_children()
    print('%-12s %-6s %4s | %-23s | %-23s | %8s %7s %8s | %7s %8s' % (
        'container', 'engine', 'runs', 'dump s med (min-max)', 'restore s med (min-max)', 'page MiB', 'cp s',
        'memcpy s', 'x cp', 'x memcpy'))
    for r in rows:
        print(r)
    print('(%d runs each, images under %s; dump: until `stasis dump` returns, the container stopped; restore: '
          'until the new container runs the restored tree; cp and memcpy: the image\'s page data copied in the '
          'same run, medians; "x cp" = dump / cp, "x memcpy" = restore / memcpy, per run, median)'
          % (opts.runs, opts.dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
