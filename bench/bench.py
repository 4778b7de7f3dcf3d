#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Dump/restore benchmark: a bigmem process of each size, dumped to tmpfs
and to disk, restored warm (right after the dump) and cold (after an idle
pause, so the hypervisor reclaims the freed memory; see DESIGN.md 7).

    python3 bench/bench.py --build build [--sizes 64,1024] [--runs 5] [--no-cold] [--thp]
                           [--dirs /dev/shm,/var/tmp]

For each size/dir/mode it prints the median dump time and restore time
(until `stasis restore --detach` returns), their throughput in GB/s, the
dump time without the flush to disk (--leave-running dumps of the same
process just before, with STASIS_NOSYNC=1) and what the flush costs per
GiB (a flushed --leave-running dump minus the mean of the unflushed ones
made just before and after it: fsync of every file and the directory), and
the ratio to copying the same bytes in the same run: `cp` of the page file
for the dump, memcpy (bench/memcpy_bw) for the restore. Every restored
process is checked (bigmem verifies all its pages and prints PASS); a run
whose restore is broken is reported and not timed.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'lib'))
import stasistest as st  # noqa: E402


class RunError(Exception):
    pass


def memcpy_seconds(build, size_mb):
    """Seconds bench/memcpy_bw takes to copy size_mb MiB (the restore reference)."""
    m = st.run_cmd([os.path.join(build, 'bench', 'memcpy_bw'), str(size_mb), '1'], timeout=120)
    if m.rc != 0:
        raise RunError('memcpy_bw %s' % m.what())
    return float(m.out.split()[3])


def one_run(opts, size_mb, target, cold):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-bench-work-')
    imgroot = tempfile.mkdtemp(prefix='stasis-bench-', dir=target)
    img = os.path.join(imgroot, 'img')
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', 'bigmem'), [str(size_mb)] + (['thp'] if opts.thp else []), work,
                    os.path.join(work, 'bigmem.log'))
    fds = []
    try:
        w.start()
        w.wait_ready(120)
        pid = w.pid
        # --leave-running dumps without, with, and again without the flush:
        # the flushed one sits between the two it is compared with.
        lr = {}
        for tag, nosync in (('a', True), ('sync', False), ('b', True)):
            env = dict(os.environ, STASIS_NOSYNC='1') if nosync else dict(os.environ)
            os.sync()  # no writeback of the one before in this one's time
            x = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(pid), '-D', img + '-' + tag,
                            '--leave-running'], timeout=300, env=env)
            if x.rc != 0:
                raise RunError('--leave-running dump %s' % x.what())
            shutil.rmtree(img + '-' + tag)
            lr[tag] = x.elapsed
        env = dict(os.environ)
        os.sync()
        d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(pid), '-D', img], timeout=300, env=env)
        if d.rc != 0:
            raise RunError('dump %s' % d.what())
        if st.wait_pid(pid, 10) is None or not st.pid_gone(pid, 5):
            raise RunError('dumped process %d did not go away' % pid)
        files = [os.path.join(img, f) for f in os.listdir(img)]
        pages = max(files, key=os.path.getsize)
        image_bytes = sum(os.path.getsize(f) for f in files)
        # cp of the page file into the same file system (same run)
        t0 = time.monotonic()
        subprocess.run(['cp', pages, os.path.join(imgroot, 'cp-copy')], check=True)
        cp_s = time.monotonic() - t0
        os.unlink(os.path.join(imgroot, 'cp-copy'))
        memcpy_s = memcpy_seconds(opts.build, size_mb)
        if cold:
            time.sleep(opts.cold_sleep)
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach'], timeout=300, stdin=r)
        os.close(r)
        if res.rc != 0:
            raise RunError('restore %s' % res.what())
        if res.out.strip() != str(pid):
            raise RunError('restore printed %r, expected %d' % (res.out[:80], pid))
        w.set_stdin(wfd)
        fds.remove(wfd)
        err = w.finish(300)
        if err:
            raise RunError('restored process: %s' % err)
        return {'dump': d.elapsed, 'nosync': (lr['a'] + lr['b']) / 2, 'lrsync': lr['sync'], 'restore': res.elapsed, 'cp': cp_s, 'memcpy': memcpy_s,
                'image': image_bytes}
    finally:
        st.end_run(w, fds, imgroot, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--sizes', default='64,1024', help='MiB, comma separated')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dirs', default='/dev/shm,/var/tmp', help='image directories (tmpfs, disk)')
    ap.add_argument('--no-cold', action='store_true', help='skip the cold runs')
    ap.add_argument('--cold-sleep', type=float, default=15.0, help='idle seconds before a cold restore')
    ap.add_argument('--thp', action='store_true', help='the process advises MADV_HUGEPAGE (transparent huge pages)')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    st.make_subreaper()
    modes = ['warm'] if opts.no_cold else ['warm', 'cold']
    print('%6s %-10s %-4s %4s | %9s %7s %6s | %8s %11s | %9s %7s %8s | %7s %7s' % (
        'MiB', 'dir', 'mode', 'ok', 'dump s', 'GB/s', 'x cp', 'nosync s', 'flush s/GiB', 'restore s', 'GB/s',
        'x memcpy', 'cp s', 'memcpy'))
    failed = 0
    for size in [int(s) for s in opts.sizes.split(',')]:
        nbytes = size << 20
        for target in opts.dirs.split(','):
            for mode in modes:
                runs, errors = [], []
                for _ in range(opts.runs):
                    try:
                        runs.append(one_run(opts, size, target, mode == 'cold'))
                    except (RunError, RuntimeError, FileNotFoundError) as e:
                        errors.append(str(e))
                if not runs:
                    failed += 1
                    print('%6d %-10s %-4s %4s | failed: %s' % (size, target, mode, '0/%d' % opts.runs, errors[0]))
                    continue
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                # ratios per run, then the median: copy and stasis in the same run
                rd = statistics.median(r['dump'] / r['cp'] for r in runs)
                rr = statistics.median(r['restore'] / r['memcpy'] for r in runs)
                flush = statistics.median(r['lrsync'] - r['nosync'] for r in runs) / (size / 1024)
                print('%6d %-10s %-4s %4s | %9.3f %7.2f %6.1f | %8.3f %11.3f | %9.3f %7.2f %8.1f | %7.3f %7.3f' % (
                    size, target, mode, '%d/%d' % (len(runs), opts.runs), med['dump'], nbytes / med['dump'] / 1e9,
                    rd, med['nosync'], flush, med['restore'], nbytes / med['restore'] / 1e9, rr, med['cp'], med['memcpy']))
                for e in errors:
                    print('       run failed: %s' % e)
                    failed += 1
                sys.stdout.flush()
    print('(times are medians; "x cp" = dump time / cp of the page file, "x memcpy" = restore time / memcpy '
          'of the same bytes, both measured in the same run; "nosync s" = a --leave-running dump with STASIS_NOSYNC=1, '
          '"flush s/GiB" = flushed minus unflushed --leave-running dump, per GiB of memory)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
