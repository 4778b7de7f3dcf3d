#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 13's targets in one table: runs the measurements of the other
benchmarks here (their one_run functions: lazy.py, bench.py, predump.py,
tree.py, cowshare.py, small.py; nothing is measured twice in two ways)
and prints one Markdown table of target, measured median, the ratio to
memcpy/cp of the same bytes in the same runs where the target has one,
and met or missed. Warm and cold (after an idle pause, so the hypervisor
takes the freed memory back; DESIGN.md 7) are separate rows.

    python3 bench/table.py --build build [--runs 5] [--quick] [--no-cold] [--no-8g]
                           [--dir /dev/shm] [--lazy-dir /var/tmp]

--quick: 2 runs of each, no cold rows, no 8 GiB lazy row (a few minutes;
the figures are then indications, not medians of 5). The header says
when, where, and the load average before and after: on a loaded machine
every time here includes waiting for a CPU.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import cowshare  # noqa: E402
import lazy  # noqa: E402
import predump  # noqa: E402
import small  # noqa: E402
import tree  # noqa: E402
from bench import st  # noqa: E402

ERRORS = (bench.RunError, lazy.RunError, RuntimeError, FileNotFoundError, ValueError, OSError,
          subprocess.CalledProcessError)


def runs_of(n, fn, *args):
    """n results of fn(*args); failures are kept as their messages."""
    ok, failed = [], []
    for _ in range(n):
        try:
            ok.append(fn(*args))
        except ERRORS as e:
            failed.append(str(e).splitlines()[0][:160] if str(e) else type(e).__name__)
    return ok, failed


class Table:
    def __init__(self):
        self.rows = []

    def add(self, what, goal, value, unit, ratio, met, runs, failed):
        """value None: every run failed."""
        self.rows.append((what, goal, value, unit, ratio, met, runs, failed))
        print('  %s: %s' % (what, 'failed: %s' % failed[0] if value is None else '%.3g %s' % (value, unit)),
              file=sys.stderr, flush=True)

    def show(self):
        print('| target | goal | measured (median) | x memcpy / x cp | met | runs |')
        print('|---|---|---|---|---|---|')
        for what, goal, value, unit, ratio, met, runs, failed in self.rows:
            if value is None:
                print('| %s | %s | failed: %s | | missed | 0/%d |' % (what, goal, failed[0], len(failed)))
                continue
            print('| %s | %s | %s %s | %s | %s | %d/%d |' % (
                what, goal, fmt(value), unit, ratio or '', 'n/a' if met is None else 'met' if met else '**missed**',
                runs, runs + len(failed)))
        for what, _, _, _, _, _, _, failed in self.rows:
            for f in failed:
                print('\n%s: a run failed: %s' % (what, f))


def fmt(v):
    return '%.0f' % v if v >= 100 else '%.1f' % v if v >= 10 else '%.2f' % v if v >= 0.1 else '%.3f' % v


def med(rs, key):
    return statistics.median(key(r) for r in rs)


def lazy_rows(t, o, size_mb, cold):
    mode = 'cold' if cold else 'warm'
    if lazy.free_mb() < 2 * size_mb + 1024:
        t.add('lazy restore %d GiB, resume (%s)' % (size_mb >> 10, mode), '<= 3 ms', None, '', '', False, 0,
              ['skipped: %d MiB available, needs about %d' % (lazy.free_mb(), 2 * size_mb + 1024)])
        return
    ok, failed = runs_of(o.runs, lazy.one_run, o.lazy_opts, size_mb, cold)
    if not ok:
        t.add('lazy restore %d GiB, resume (%s)' % (size_mb >> 10, mode), '<= 3 ms', None, '', '', False, 0, failed)
        return
    resume = med(ok, lambda r: r['resume']) * 1e3
    t.add('lazy restore %d GiB, resume (%s)' % (size_mb >> 10, mode), '<= 3 ms', resume, 'ms',
          '%.3fx memcpy' % med(ok, lambda r: r['resume'] / r['memcpy']), resume <= 3, len(ok), failed)
    per_gib = med(ok, lambda r: r['full']) / (size_mb / 1024)
    t.add('lazy restore %d GiB, full fill (%s)' % (size_mb >> 10, mode), '<= 0.25 s/GiB' if not cold else '(none cold)',
          per_gib, 's/GiB', '%.2fx memcpy' % med(ok, lambda r: r['full'] / r['memcpy']),
          None if cold else per_gib <= 0.25, len(ok), failed)


def eager_rows(t, o, cold):
    mode = 'cold' if cold else 'warm'
    ok, failed = runs_of(o.runs, bench.one_run, o.bench_opts, 1024, o.dir, cold)
    if not ok:
        t.add('eager restore 1 GiB (%s)' % mode, '<= 2x memcpy', None, '', '', False, 0, failed)
        return
    rr = med(ok, lambda r: r['restore'] / r['memcpy'])
    t.add('eager restore 1 GiB (%s)' % mode, '<= 2x memcpy', med(ok, lambda r: r['restore']), 's',
          '%.2fx memcpy' % rr, rr <= 2, len(ok), failed)
    rd = med(ok, lambda r: r['dump'] / r['cp'])
    t.add('dump 1 GiB (%s, %s)' % (o.dir, mode), '<= 1.5x cp', med(ok, lambda r: r['dump']), 's',
          '%.2fx cp' % rd, rd <= 1.5, len(ok), failed)


def tree_rows(t, o, cold):
    mode = 'cold' if cold else 'warm'
    ok, failed = [], []
    for i in range(o.runs):
        try:
            ok.append(tree.one_run(o.tree_opts, 50, 16, o.dir, cold, i))
        except ERRORS as e:
            failed.append(str(e).splitlines()[0][:160])
    what = 'tree 50 x 16 MiB restore (%s)' % mode
    if not ok:
        t.add(what, '>= 2 GB/s', None, '', '', False, 0, failed)
        return
    gbs = (50 * 16 << 20) / med(ok, lambda r: r['restore']) / 1e9
    t.add(what, '>= 2 GB/s', gbs, 'GB/s', '%.1fx memcpy' % med(ok, lambda r: r['restore'] / r['memcpy']),
          gbs >= 2, len(ok), failed)


def predump_row(t, o):
    ok, failed = runs_of(o.runs, predump.one_run, o.predump_opts)
    what = 'pre-dump + final dump 1 GiB, 1% dirty: frozen'
    if not ok:
        t.add(what, '<= 20 ms', None, '', '', False, 0, failed)
        return
    frozen = med(ok, lambda r: r[0])
    t.add(what, '<= 20 ms', frozen, 'ms', '', frozen <= 20, len(ok), failed)


def cowshare_row(t, o):
    ok, failed = runs_of(o.runs, cowshare.one_run, o.cow_opts, 10, 128)
    what = 'ten forked workers sharing 128 MiB: image'
    if not ok:
        t.add(what, '<= 300 MiB', None, '', '', False, 0, failed)
        return
    image = med(ok, lambda r: r['image'])
    t.add(what, '<= 300 MiB', image, 'MiB', '', image <= 300, len(ok), failed)


def small_rows(t, o):
    """small.py's workloads, per process; its first run of each is a warm-up."""
    d, r, failed = [], [], []
    for name in small.DEFAULT.split(','):
        for k in range(1 + o.runs):
            try:
                ds, rs, n, _, _ = small.one_run(o.small_opts, name)
            except ERRORS as e:
                failed.append('%s: %s' % (name, str(e).splitlines()[0][:160]))
                continue
            if k:
                d.append(ds / n)
                r.append(rs / n)
    for what, v in (('small process dump (per process)', d), ('small process restore (per process)', r)):
        if not v:
            t.add(what, '< 20 ms', None, '', '', False, 0, failed or ['no run'])
            continue
        ms = statistics.median(v) * 1e3
        t.add(what, '< 20 ms', ms, 'ms', '', ms < 20, len(v), failed)


def machine():
    mem = 0
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem = int(line.split()[1]) >> 20
    with open('/sys/kernel/mm/transparent_hugepage/enabled') as f:
        thp = f.read().split('[')[1].split(']')[0]
    return '%d CPUs, %d GiB, Linux %s, THP %s' % (os.cpu_count(), mem, platform.release(), thp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--quick', action='store_true', help='2 runs each, no cold rows, no 8 GiB row')
    ap.add_argument('--no-cold', action='store_true', help='skip the cold rows')
    ap.add_argument('--no-8g', action='store_true', help='skip the 8 GiB lazy restore')
    ap.add_argument('--dir', default='/dev/shm', help='images of the eager, tree, pre-dump, cow and small runs')
    ap.add_argument('--lazy-dir', default='/var/tmp', help='images of the lazy runs (as bench/lazy.py)')
    ap.add_argument('--cold-sleep', type=float, default=15.0, help='idle seconds before a cold restore')
    o = ap.parse_args()
    o.build = os.path.abspath(o.build)
    if o.quick:
        o.runs, o.no_cold, o.no_8g = min(o.runs, 2), True, True
    common = dict(build=o.build, cold_sleep=o.cold_sleep, thp=False)
    o.lazy_opts = SimpleNamespace(dir=o.lazy_dir, **common)
    o.bench_opts = SimpleNamespace(**common)
    o.tree_opts = SimpleNamespace(logs=None, **common)
    o.predump_opts = SimpleNamespace(build=o.build, mib=1024, pct=1.0, dir=o.dir)
    o.cow_opts = SimpleNamespace(build=o.build, dir=o.dir)
    o.small_opts = SimpleNamespace(build=o.build, dir=o.dir)
    st.make_subreaper()
    modes = [False] if o.no_cold else [False, True]
    load0, t0 = os.getloadavg()[0], time.monotonic()
    t = Table()
    for cold in modes:
        lazy_rows(t, o, 1024, cold)
    if not o.no_8g:
        lazy_rows(t, o, 8192, False)
    for cold in modes:
        eager_rows(t, o, cold)
    predump_row(t, o)
    for cold in modes:
        tree_rows(t, o, cold)
    cowshare_row(t, o)
    small_rows(t, o)
    print('%s UTC, %s; load average %.1f before, %.1f after (%.0f s); medians of %d runs%s' % (
        time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine(), load0, os.getloadavg()[0],
        time.monotonic() - t0, o.runs, ' (--quick)' if o.quick else ''))
    print()
    t.show()
    print('\nresume = from the start of `stasis restore --lazy` until the restored process runs (as '
          '--print-stats reports it); full = until every page is in. "x memcpy" and "x cp" are each run\'s '
          'time over memcpy (bench/memcpy_bw) or `cp` of the same bytes in that run, then the median. '
          'Cold: restored after %.0f s idle (DESIGN.md 7).' % o.cold_sleep)
    return 0 if all(r[5] is not False for r in t.rows) else 1


if __name__ == '__main__':
    sys.exit(main())
