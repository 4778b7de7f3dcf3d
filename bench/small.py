#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Small-workload benchmark: the per-process cost of a dump and a restore,
where memory is not what takes the time (the ZDTM workloads of
tests/zdtm/: a few pages, a handful of fds, threads, a few processes).

    python3 bench/small.py --build build [--runs 7] [--dir /dev/shm]
                           [--workloads mem,pipes,signals,...]

For each workload it prints the median wall time of `stasis dump` (until
it returns, the image fsync'ed on DIR) and of `stasis restore --detach`
(until it returns, the tree running), each also per process of the tree,
the CPU time (user + system) each command used, and at the end the
medians over all runs of every workload. On a loaded machine the wall
times are mostly waiting for a CPU; the CPU times are not. Every
restored workload is checked (it verifies itself and prints PASS); a run
whose restore is broken is reported and not timed. The first --warmup
runs of each workload are not counted (page cache, dentries). The last
lines set the medians per process against the targets of the issues:
dump and restore under 50 ms each (small workloads) and under 20 ms each
(a small process of a few MiB).
"""
import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'lib'))
import stasistest as st  # noqa: E402

DEFAULT = 'mem,pipes,signals,files,threads,posix_timers,sockets,zombies,tree'
TARGETS_MS = (50.0, 20.0)


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(args, **kw):
    """(result, wall seconds, CPU seconds of the command and its reaped children)."""
    t0, c0 = time.monotonic(), cpu()
    res = st.run_cmd(args, **kw)
    return res, time.monotonic() - t0, cpu() - c0


def one_run(opts, name):
    """(dump s, restore s, processes, dump CPU s, restore CPU s), or raises RuntimeError."""
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-bench-small-')
    img = tempfile.mkdtemp(prefix='stasis-bench-small-img-', dir=opts.dir)
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', name), [], work, os.path.join(work, 'log'))
    try:
        w.start()
        w.wait_ready()
        pids = list(st.tree_info(w.pid))
        nproc = len(pids)
        res, dump_s, dump_c = timed([stasis, 'dump', '--type', 'process', '--pid', str(w.pid), '-D', img])
        if res.rc != 0:
            raise RuntimeError('dump %s' % res.what())
        st.wait_pid(w.pid, 10)
        for pid in pids:  # zombies of the tree came to us: reap them
            st.pid_gone(pid, 5)
        r, wfd = os.pipe()
        try:
            res, restore_s, restore_c = timed([stasis, 'restore', '-D', img, '--detach'], stdin=r)
        finally:
            os.close(r)
        w.set_stdin(wfd)
        if res.rc != 0:
            raise RuntimeError('restore %s' % res.what())
        err = w.finish(30)
        if err:
            raise RuntimeError('restored workload: %s' % err)
        return dump_s, restore_s, nproc, dump_c, restore_c
    finally:
        w.close()
        st.kill_reap_all_children()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(img, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--warmup', type=int, default=1, help='runs of each workload not counted')
    ap.add_argument('--dir', default='/dev/shm', help='where the images go')
    ap.add_argument('--workloads', default=DEFAULT, help='comma separated, from tests/zdtm/')
    opts = ap.parse_args()
    st.make_subreaper()
    print('%-14s %5s %9s %11s %10s %12s %8s %11s' % ('workload', 'procs', 'dump ms', 'restore ms', 'dump/proc',
                                                       'restore/proc', 'dump cpu', 'restore cpu'))
    all_d, all_r, all_dc, all_rc, failed = [], [], [], [], 0
    for name in opts.workloads.split(','):
        d, r, dc, rc, n = [], [], [], [], 1
        for k in range(opts.warmup + opts.runs):
            try:
                ds, rs, n, dcs, rcs = one_run(opts, name)
            except RuntimeError as e:
                print('%-14s run failed: %s' % (name, e))
                failed += 1
                continue
            if k < opts.warmup:
                continue
            ds, rs, dcs, rcs = ds / n, rs / n, dcs / n, rcs / n  # per process from here
            d.append(ds)
            r.append(rs)
            dc.append(dcs)
            rc.append(rcs)
        if not d:
            continue
        md, mr = statistics.median(d) * 1000, statistics.median(r) * 1000
        all_d, all_r, all_dc, all_rc = all_d + d, all_r + r, all_dc + dc, all_rc + rc
        print('%-14s %5d %9.1f %11.1f %10.1f %12.1f %8.1f %11.1f' % (
            name, n, md * n, mr * n, md, mr, statistics.median(dc) * 1000 * n, statistics.median(rc) * 1000 * n))
    if all_d:
        med = statistics.median
        print('%-14s %5s %9s %11s %10.1f %12.1f %8.1f %11.1f   (per process, medians of %d runs%s)' % (
            'all', '', '', '', med(all_d) * 1000, med(all_r) * 1000, med(all_dc) * 1000, med(all_rc) * 1000,
            len(all_d), ', %d failed' % failed if failed else ''))
        for t in TARGETS_MS:
            print('target %2.0f ms: dump %.2fx, restore %.2fx (wall); dump %.2fx, restore %.2fx (cpu)  (<= 1 meets it)' % (
                t, med(all_d) * 1000 / t, med(all_r) * 1000 / t, med(all_dc) * 1000 / t, med(all_rc) * 1000 / t))
        print('load average %.1f on %d CPUs: wall times include waiting for a CPU; "cpu" is user+system time'
              % (os.getloadavg()[0], os.cpu_count()))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
