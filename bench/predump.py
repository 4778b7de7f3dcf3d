#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Incremental dump benchmark (issue 13): a MIB MiB process (bench/dirtier.c)
is pre-dumped, rewrites PCT percent of its pages, and is dumped again with
--parent. Prints the medians of the time the tree is frozen in that final
dump (--print-stats' frozen_time; the target is <= 20 ms for 1 GiB and 1%),
of the final dump's whole run, of the pre-dump, and of a plain full dump's
frozen time for comparison.

    python3 bench/predump.py --build build [--mib 1024] [--pct 1] [--runs 5] [--dir /dev/shm]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RunError, st  # noqa: E402


def dump(stasis, pid, img, extra):
    d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(pid), '-D', img, '--print-stats'] + extra,
                   timeout=300, env=dict(os.environ, STASIS_NOSYNC='1'))
    if d.rc != 0:
        raise RunError('dump %s %s' % (' '.join(extra), d.what()))
    stats = json.loads(d.out.strip().splitlines()[-1])
    return stats['frozen_time'] / 1e3, d.elapsed * 1e3


def one_run(opts):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-pd-work-')
    imgroot = tempfile.mkdtemp(prefix='stasis-pd-', dir=opts.dir)
    w = st.Workload(os.path.join(opts.build, 'bench', 'dirtier'), [str(opts.mib), str(opts.pct)], work,
                    os.path.join(work, 'dirtier.log'))
    try:
        w.start()
        w.wait_ready(300)
        full, _ = dump(stasis, w.pid, os.path.join(imgroot, 'full'), ['--leave-running'])
        _, pre = dump(stasis, w.pid, os.path.join(imgroot, 'd1'), ['--pre-dump'])
        os.write(w.stdin_w, b'go\n')
        end = time.monotonic() + 60
        while 'DIRTY' not in w.log():
            if time.monotonic() > end:
                raise RunError('the process did not dirty its pages')
            time.sleep(0.005)
        frozen, total = dump(stasis, w.pid, os.path.join(imgroot, 'd2'), ['--parent', os.path.join(imgroot, 'd1')])
        pages = os.path.getsize(os.path.join(imgroot, 'd2', 'pages-%d.img' % w.pid)) >> 20
        return frozen, total, pre, full, pages
    finally:
        if w.pid and not st.pid_gone(w.pid, 0):
            os.kill(w.pid, 9)
        if w.pid:
            st.wait_pid(w.pid, 10)
        shutil.rmtree(imgroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--mib', type=int, default=1024)
    ap.add_argument('--pct', type=float, default=1.0)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dir', default='/dev/shm')
    opts = ap.parse_args()
    # The pre-dump's keeper outlives its stasis: it must be ours to reap,
    # not whoever runs this script.
    st.make_subreaper()
    runs = [one_run(opts) for _ in range(opts.runs)]
    med = [statistics.median(r[i] for r in runs) for i in range(5)]
    print('%d MiB, %.1f%% dirtied, medians of %d (images in %s):' % (opts.mib, opts.pct, opts.runs, opts.dir))
    print('  final dump --parent: frozen %.1f ms (target <= 20 ms), whole run %.0f ms, %d MiB of pages'
          % (med[0], med[1], med[4]))
    print('  pre-dump whole run %.0f ms; a full dump is frozen %.0f ms' % (med[2], med[3]))
    print('  frozen per run (ms): %s' % ', '.join('%.1f' % r[0] for r in runs))


if __name__ == '__main__':
    main()
