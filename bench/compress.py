#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""dump --compress benchmark: a mixmem process (half random, half
text-like memory: tests/zdtm/mixmem.c) dumped without compression and
with --compress=1 and --compress=3, then restored warm (right after the
dump) and cold (after an idle pause, as bench/bench.py).

    python3 bench/compress.py --build build [--size 1024] [--runs 5] [--no-cold]
                              [--dir /var/tmp] [--levels 1,3]

One group per run: the uncompressed dump first (its page file is the
reference: `cp` of it in the same run), then one dump per level, each of
a fresh process with the same content. Printed per variant and mode: the
page file's size and its ratio to the raw data, median dump and restore
times, and both as ratios to that run's `cp` of the raw page file
(median of the per-run ratios). Every restored process checks all its
pages; a broken run is reported and not timed.
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


def dump_restore(opts, root, tag, extra, cold):
    """One fresh process dumped with extra and restored; the times, the
    page file's path and size."""
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-zbench-work-')
    img = os.path.join(root, tag)
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', 'mixmem'), [str(opts.size)], work,
                    os.path.join(work, 'mixmem.log'))
    fds = []
    try:
        w.start()
        w.wait_ready(300)
        pid = w.pid
        os.sync()
        d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(pid), '-D', img] + extra, timeout=600)
        if d.rc != 0:
            raise RunError('dump %s %s' % (tag, d.what()))
        if st.wait_pid(pid, 10) is None or not st.pid_gone(pid, 5):
            raise RunError('dumped process %d did not go away' % pid)
        pages = os.path.join(img, 'pages-%d.img' % pid)
        size = os.path.getsize(pages)
        if cold:
            time.sleep(opts.cold_sleep)
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach'], timeout=600, stdin=r)
        os.close(r)
        if res.rc != 0 or res.out.strip() != str(pid):
            raise RunError('restore %s %s' % (tag, res.what()))
        w.set_stdin(wfd)
        fds.remove(wfd)
        err = w.finish(600)
        if err:
            raise RunError('restored process (%s): %s' % (tag, err))
        return {'dump': d.elapsed, 'restore': res.elapsed, 'size': size, 'pages': pages}
    finally:
        st.end_run(w, fds, work)


def one_group(opts, variants, cold):
    root = tempfile.mkdtemp(prefix='stasis-zbench-', dir=opts.dir)
    try:
        out = {}
        for tag, extra in variants:
            out[tag] = dump_restore(opts, root, tag, extra, cold)
            if tag == 'none':
                t0 = time.monotonic()
                subprocess.run(['cp', out[tag]['pages'], os.path.join(root, 'cp-copy')], check=True)
                cp_s = time.monotonic() - t0
                os.unlink(os.path.join(root, 'cp-copy'))
            shutil.rmtree(os.path.join(root, tag))
        for v in out.values():
            v['cp'] = cp_s
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--size', type=int, default=1024, help='MiB of memory')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dir', default='/var/tmp', help='image directory')
    ap.add_argument('--levels', default='1,3')
    ap.add_argument('--no-cold', action='store_true', help='skip the cold runs')
    ap.add_argument('--cold-sleep', type=float, default=15.0, help='idle seconds before a cold restore')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    st.make_subreaper()
    variants = [('none', [])] + [('zstd-%s' % l, ['--compress=%s' % l]) for l in opts.levels.split(',')]
    raw = opts.size << 20
    print('%6s %-8s %-4s %4s | %9s %6s | %8s %6s | %9s %6s | %7s' % (
        'MiB', 'pages', 'mode', 'ok', 'image MiB', 'x raw', 'dump s', 'x cp', 'restore s', 'x cp', 'cp s'))
    failed = 0
    for mode in ['warm'] if opts.no_cold else ['warm', 'cold']:
        groups, errors = [], []
        for _ in range(opts.runs):
            try:
                groups.append(one_group(opts, variants, mode == 'cold'))
            except (RunError, RuntimeError, FileNotFoundError, subprocess.CalledProcessError) as e:
                errors.append(str(e))
        for tag, _ in variants:
            runs = [g[tag] for g in groups]
            if not runs:
                print('%6d %-8s %-4s %4s | failed: %s' % (opts.size, tag, mode, '0/%d' % opts.runs, errors[0]))
                failed += 1
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in ('dump', 'restore', 'size', 'cp')}
            print('%6d %-8s %-4s %4s | %9.1f %6.3f | %8.3f %6.2f | %9.3f %6.2f | %7.3f' % (
                opts.size, tag, mode, '%d/%d' % (len(runs), opts.runs), med['size'] / 2**20, med['size'] / raw,
                med['dump'], statistics.median(r['dump'] / r['cp'] for r in runs), med['restore'],
                statistics.median(r['restore'] / r['cp'] for r in runs), med['cp']))
        for e in errors:
            print('       run failed: %s' % e)
            failed += 1
        sys.stdout.flush()
    print('(medians; "x raw" = page file / uncompressed page data; "x cp" = time / `cp` of the uncompressed '
          'page file in the same run; memory half random, half text-like)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
