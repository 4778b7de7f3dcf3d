#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lazy restore benchmark (restore --lazy): a bigmem process of each size
is dumped, then restored with --lazy --wait-lazy --print-stats, warm (right
after the dump) and cold (after an idle pause, so the hypervisor reclaims
the freed memory; DESIGN.md 7).

    python3 bench/lazy.py --build build [--sizes 1024,8192] [--runs 5] [--no-cold] [--thp]
                          [--dir /var/tmp]

For each size and mode it prints the medians of: the time until the tree
runs (resume, from the start of the command, as stasis measures it), the
time until every page is in (full), full per GiB, and full / memcpy of the
same bytes (bench/memcpy_bw, measured in the same run). Each restored
process then verifies all its pages (bigmem prints PASS); a run that fails
is reported and not timed. A size that does not fit in free memory twice
over (the process, and the page cache holding its image) is skipped.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'lib'))
import stasistest as st  # noqa: E402


class RunError(Exception):
    pass


def memcpy_seconds(build, size_mb):
    m = st.run_cmd([os.path.join(build, 'bench', 'memcpy_bw'), str(size_mb), '1'], timeout=300)
    if m.rc != 0:
        raise RunError('memcpy_bw %s' % m.what())
    return float(m.out.split()[3])


def free_mb():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) // 1024
    return 0


def one_run(opts, size_mb, cold):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-bench-work-')
    imgroot = tempfile.mkdtemp(prefix='stasis-bench-lazy-', dir=opts.dir)
    img = os.path.join(imgroot, 'img')
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', 'bigmem'), [str(size_mb)] + (['thp'] if opts.thp else []), work,
                    os.path.join(work, 'bigmem.log'))
    fds = []
    try:
        w.start()
        w.wait_ready(300)
        pid = w.pid
        d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(pid), '-D', img], timeout=600,
                       env=dict(os.environ, STASIS_NOSYNC='1'))
        if d.rc != 0:
            raise RunError('dump %s' % d.what())
        if st.wait_pid(pid, 10) is None or not st.pid_gone(pid, 10):
            raise RunError('dumped process %d did not go away' % pid)
        memcpy_s = memcpy_seconds(opts.build, size_mb)
        if cold:
            time.sleep(opts.cold_sleep)
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach', '--lazy', '--wait-lazy', '--print-stats'],
                         timeout=600, stdin=r)
        os.close(r)
        if res.rc != 0:
            raise RunError('restore %s' % res.what())
        lines = res.out.split('\n')
        if lines[0].strip() != str(pid):
            raise RunError('restore printed %r, expected %d' % (res.out[:80], pid))
        s = json.loads(lines[1])
        if s.get('lazy_state') != 'done':
            raise RunError('fill not done: %s' % s)
        w.set_stdin(wfd)
        fds.remove(wfd)
        err = w.finish(600)
        if err:
            raise RunError('restored process: %s' % err)
        return {'resume': s['resume_time'] / 1e6, 'full': s['full_time'] / 1e6, 'memcpy': memcpy_s,
                'faults': s['lazy_faults'], 'cmd': res.elapsed}
    finally:
        st.end_run(w, fds, imgroot, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--sizes', default='1024,8192', help='MiB, comma separated')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dir', default='/var/tmp', help='image directory')
    ap.add_argument('--no-cold', action='store_true', help='skip the cold runs')
    ap.add_argument('--cold-sleep', type=float, default=15.0, help='idle seconds before a cold restore')
    ap.add_argument('--thp', action='store_true', help='the process advises MADV_HUGEPAGE (transparent huge pages)')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    st.make_subreaper()
    modes = ['warm'] if opts.no_cold else ['warm', 'cold']
    print('%6s %-4s %4s | %9s %9s | %7s %8s %8s | %8s %7s' % (
        'MiB', 'mode', 'ok', 'resume ms', 'x memcpy', 'full s', 's/GiB', 'x memcpy', 'memcpy s', 'faults'))
    failed = 0
    for size in [int(s) for s in opts.sizes.split(',')]:
        if free_mb() < 2 * size + 1024:
            print('%6d skipped: %d MiB available, needs about %d' % (size, free_mb(), 2 * size + 1024))
            continue
        for mode in modes:
            runs, errors = [], []
            for _ in range(opts.runs):
                try:
                    runs.append(one_run(opts, size, mode == 'cold'))
                except (RunError, RuntimeError, FileNotFoundError, ValueError) as e:
                    errors.append(str(e))
            if not runs:
                failed += 1
                print('%6d %-4s %4s | failed: %s' % (size, mode, '0/%d' % opts.runs, errors[0]))
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rr = statistics.median(r['resume'] / r['memcpy'] for r in runs)
            rf = statistics.median(r['full'] / r['memcpy'] for r in runs)
            print('%6d %-4s %4s | %9.1f %9.3f | %7.3f %8.3f %8.2f | %8.3f %7d' % (
                size, mode, '%d/%d' % (len(runs), opts.runs), med['resume'] * 1e3, rr, med['full'],
                med['full'] / (size / 1024), rf, med['memcpy'], med['faults']))
            for e in errors:
                print('       run failed: %s' % e)
                failed += 1
            sys.stdout.flush()
    print('(medians; resume = from the start of `stasis restore` until the tree runs, full = until every page '
          'is in; "x memcpy" = that time / memcpy of the same bytes in the same run)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
