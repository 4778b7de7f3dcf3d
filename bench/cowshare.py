#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Copy-on-write tree benchmark: a root that fills MIB MiB and forks
WORKERS workers that only read it (tests/zdtm/cowshare.c; issue 13's
shape, ten workers sharing 128 MiB, by default). Prints the median dump
and restore times, the image size against the tree's distinct memory and
against the sum over its processes, and the tree's Pss before the dump
and after the restore (each shared page should be saved once and shared
again).

    python3 bench/cowshare.py --build build [--shape 10x128] [--runs 5] [--dir /dev/shm]
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RunError, st  # noqa: E402


def tree_pss_mib(root):
    total = 0
    for pid in st.tree_info(root):
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith('Pss:'))
        except OSError:
            continue
    return total / 1024


def one_run(opts, workers, mib):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-cow-work-')
    imgroot = tempfile.mkdtemp(prefix='stasis-cow-', dir=opts.dir)
    img = os.path.join(imgroot, 'img')
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', 'cowshare'), [str(workers), str(mib)], work,
                    os.path.join(work, 'cowshare.log'))
    fds, tree = [], {}
    try:
        w.start()
        w.wait_ready(300)
        root = w.pid
        tree = st.tree_info(root)
        pss_before = tree_pss_mib(root)
        d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(root), '-D', img], timeout=600)
        if d.rc != 0:
            raise RunError('dump %s' % d.what())
        for pid in tree:
            if not st.pid_gone(pid, 10):
                raise RunError('pid %d of the dumped tree did not go away' % pid)
        image = sum(os.path.getsize(os.path.join(img, n)) for n in os.listdir(img)) / (1 << 20)
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach'], timeout=600, stdin=r)
        os.close(r)
        if res.rc != 0:
            raise RunError('restore %s' % res.what())
        pss_after = tree_pss_mib(root)
        w.set_stdin(wfd)
        fds.remove(wfd)
        err = w.finish(300)
        if err:
            raise RunError('restored tree: %s' % err)
        return {'dump': d.elapsed, 'restore': res.elapsed, 'image': image, 'pss_before': pss_before,
                'pss_after': pss_after}
    finally:
        if w.pid:
            st.kill_reap(w.pid)
            for pid in tree:
                st.pid_gone(pid, 5)
        st.end_run(w, fds, imgroot, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--shape', default='10x128', help='WORKERSxMIB: workers sharing MIB MiB of the root')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dir', default='/dev/shm', help='where the image is written')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    n, _, m = opts.shape.partition('x')
    workers, mib = int(n), int(m)
    st.make_subreaper()
    runs, errors = [], []
    for _ in range(opts.runs):
        try:
            runs.append(one_run(opts, workers, mib))
        except (RunError, RuntimeError, FileNotFoundError) as e:
            errors.append(str(e))
    for e in errors:
        print('run failed: %s' % e)
    if not runs:
        return 1
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print('%-8s %4s | %8s %9s | %9s %8s %8s | %10s %9s' % (
        'cow tree', 'ok', 'dump s', 'restore s', 'image MiB', 'x shared', 'x sum', 'Pss before', 'Pss after'))
    print('%-8s %4s | %8.3f %9.3f | %9.1f %8.2f %8.2f | %10.0f %9.0f' % (
        opts.shape, '%d/%d' % (len(runs), opts.runs), med['dump'], med['restore'], med['image'],
        med['image'] / mib, med['image'] / (mib * (workers + 1)), med['pss_before'], med['pss_after']))
    print('(medians; "x shared" = image / the shared MiB, "x sum" = image / the sum over the %d processes; '
          'Pss in MiB over the tree)' % (workers + 1))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
