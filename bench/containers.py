#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Container benchmark: Docker containers dumped and restored as new ones.

    python3 bench/containers.py --build build [--runs 5] [--mib 256]

Starts a dockerd of its own (as the tests do: own data root and socket,
stopped by pid at the end), imports a busybox image with bench/memhog in
it, and for two containers -- the counter shell loop of the tests, and
memhog holding --mib MiB of touched memory -- times `stasis dump --type
docker` (until it returns; the container is stopped) and `stasis restore
--id NEW` (until the new container runs the restored tree). Prints the
median of --runs runs. Every restored container is checked (the counter
carries on / memhog is still running) and removed.
"""
import argparse
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
import containers as ct  # noqa: E402
import dockerd  # noqa: E402
from runner import TestFail, TestSkip  # noqa: E402


class Ctx:
    def __init__(self, build):
        self.dir = tempfile.mkdtemp(prefix='stasis-bench-ct-')
        self.r = type('R', (), {'stasis': os.path.join(build, 'stasis')})()

    def path(self, *p):
        return os.path.join(self.dir, *p)


def one(ctx, d, what, args, check):
    name, new = 'stasis-bench-a-%d' % os.getpid(), 'stasis-bench-b-%d' % os.getpid()
    img = ctx.path('img')
    shutil.rmtree(img, ignore_errors=True)
    d.docker('run', '-d', '--name', name, 'stasis-bench:1', *args)
    try:
        time.sleep(2 if what == 'counter' else 4)  # memhog touches its memory first
        t0 = time.monotonic()
        r = ct.stasis(ctx, d, 'dump', '--type', 'docker', '--id', name, '-D', img)
        t1 = time.monotonic()
        if r.returncode != 0:
            raise RuntimeError('dump: %s' % r.stderr[-300:])
        d.docker('rm', '-f', name)
        t2 = time.monotonic()
        r = ct.stasis(ctx, d, 'restore', '-D', img, '--id', new)
        t3 = time.monotonic()
        if r.returncode != 0:
            raise RuntimeError('restore: %s' % r.stderr[-300:])
        check(d, new)
        return t1 - t0, t3 - t2
    finally:
        d.docker('rm', '-f', name, new, check=False)


def check_counter(d, cid):
    a = d.docker('exec', cid, 'cat', '/data/count').stdout.split()
    time.sleep(0.6)
    b = d.docker('exec', cid, 'cat', '/data/count').stdout.split()
    if len(b) <= len(a):
        raise RuntimeError('the restored counter does not count')


def check_running(d, cid):
    if not d.inspect(cid)['State']['Running']:
        raise RuntimeError('the restored container is not running')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--mib', type=int, default=256)
    opts = ap.parse_args()
    build = os.path.abspath(opts.build)
    st.make_subreaper()
    ctx = Ctx(build)
    if not shutil.which('dockerd') or not shutil.which('docker') or not shutil.which('busybox'):
        print('containers.py: docker.io or busybox is not installed (make deps installs them)')
        return 1
    d = dockerd.Dockerd(ctx.dir)
    try:
        d.wait_up()
        # The busybox image with memhog added.
        rootfs = ctx.path('rootfs')
        dockerd.busybox_rootfs(rootfs)
        shutil.copy(os.path.join(build, 'bench', 'memhog'), os.path.join(rootfs, 'bin', 'memhog'))
        d.import_dir(rootfs, 'stasis-bench:1')
        print('%-14s %5s | %8s %9s' % ('container', 'runs', 'dump s', 'restore s'))
        for what, args, check in (('counter', ['sh', '-c', ct.COUNTER], check_counter),
                                  ('memhog-%dM' % opts.mib, ['memhog', str(opts.mib)], check_running)):
            times = [one(ctx, d, what, args, check) for _ in range(opts.runs)]
            print('%-14s %5d | %8.3f %9.3f' % (what, len(times), statistics.median(t[0] for t in times),
                                               statistics.median(t[1] for t in times)))
        print('(medians; dump: until `stasis dump` returns, the container stopped; restore: until the new '
              'container runs the restored tree)')
    except (TestSkip, TestFail) as e:
        print('containers.py: %s' % e)
        return 1
    finally:
        d.stop()
        shutil.rmtree(ctx.dir, ignore_errors=True)
        st.kill_reap_all_children()
    return 0


if __name__ == '__main__':
    sys.exit(main())
