#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tree dump/restore benchmark: a treemem process tree (NPROC processes of
MIB MiB each, default 50 x 16 MiB) dumped and restored with the same pids,
warm (restored right after the dump) and cold (after an idle pause, so the
hypervisor reclaims the freed memory; see DESIGN.md 7).

    python3 bench/tree.py --build build [--shape 50x16] [--runs 5] [--no-cold]
                          [--dirs /dev/shm,/var/tmp] [--logs DIR]

For each shape/dir/mode it prints the median dump time (until `stasis dump`
returns; the tree is gone after it) and restore time (until `stasis restore
--detach` returns), their throughput in GB/s over all the processes' memory,
the restore time per process, the time the restored tree then takes to
read all its memory (check s), and the ratios to copying the same bytes in
the same run: `cp -r` of the image directory for the dump, memcpy
(bench/memcpy_bw) for the restore. Every restored tree is checked (same
pids, parents, groups and sessions; each process verifies its memory and
the root prints PASS); a run whose restore is broken is reported and not
timed. --logs DIR adds `-v --log-file` to both commands and keeps the logs
of each run there (verbose logging costs time: use it to see where the time
goes, not for the figures).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RunError, memcpy_seconds, st  # noqa: E402


def cleanup_tree(root, pids):
    """Kills whatever is left of the tree (by pid, only while it is still
    the root's or ours) and reaps it."""
    me = os.getpid()
    for pid in pids:
        if pid != root and st.proc_ppid(pid) in (root, me) and st.proc_state(pid) not in (None, 'Z'):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    st.kill_reap(root)
    for pid in pids:
        st.pid_gone(pid, 5)


def one_run(opts, nproc, mib, target, cold, run_no):
    stasis = os.path.join(opts.build, 'stasis')
    work = tempfile.mkdtemp(prefix='stasis-tree-work-')
    imgroot = tempfile.mkdtemp(prefix='stasis-tree-', dir=target)
    img = os.path.join(imgroot, 'img')
    w = st.Workload(os.path.join(opts.build, 'tests', 'zdtm', 'treemem'), [str(nproc), str(mib)], work,
                    os.path.join(work, 'treemem.log'))
    fds, tree = [], {}
    dump_log, restore_log = [], []
    if opts.logs:
        tag = '%dx%d-%s-%s-%d' % (nproc, mib, os.path.basename(target.rstrip('/')) or 'root',
                                  'cold' if cold else 'warm', run_no)
        dump_log = ['-v', '--log-file', os.path.join(opts.logs, tag + '-dump.log')]
        restore_log = ['-v', '--log-file', os.path.join(opts.logs, tag + '-restore.log')]
    try:
        w.start()
        w.wait_ready(300)
        root = w.pid
        tree = st.tree_info(root)
        if len(tree) != nproc:
            raise RunError('the tree has %d processes, expected %d' % (len(tree), nproc))
        d = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(root), '-D', img] + dump_log,
                       timeout=600)
        if d.rc != 0:
            raise RunError('dump %s' % d.what())
        if st.wait_pid(root, 10) is None:
            raise RunError('dumped root %d did not exit' % root)
        for pid in tree:
            if not st.pid_gone(pid, 10):
                raise RunError('pid %d of the dumped tree did not go away' % pid)
        image_bytes = 0
        for dirpath, _, names in os.walk(img):
            image_bytes += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
        # cp of the whole image into the same file system (same run)
        t0 = time.monotonic()
        subprocess.run(['cp', '-r', img, os.path.join(imgroot, 'cp-copy')], check=True)
        cp_s = time.monotonic() - t0
        shutil.rmtree(os.path.join(imgroot, 'cp-copy'))
        memcpy_s = memcpy_seconds(opts.build, nproc * mib)
        if cold:
            time.sleep(opts.cold_sleep)
        r, wfd = os.pipe()
        fds.append(wfd)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach'] + restore_log, timeout=600, stdin=r)
        os.close(r)
        if res.rc != 0:
            raise RunError('restore %s' % res.what())
        if res.out.strip() != str(root):
            raise RunError('restore printed %r, expected %d' % (res.out[:80], root))
        after = st.tree_info(root)
        if after != tree:
            lost = sorted(set(tree) - set(after))
            changed = [p for p in tree if p in after and after[p] != tree[p]]
            raise RunError('restored tree differs: %d of %d pids lost (%s), %d changed (%s)' % (
                len(lost), len(tree), lost[:4], len(changed), changed[:4]))
        w.set_stdin(wfd)
        fds.remove(wfd)
        t0 = time.monotonic()
        err = w.finish(300)
        check_s = time.monotonic() - t0
        if err:
            raise RunError('restored tree: %s' % err)
        return {'dump': d.elapsed, 'restore': res.elapsed, 'cp': cp_s, 'memcpy': memcpy_s,
                'image': image_bytes, 'check': check_s}
    finally:
        if w.pid:
            cleanup_tree(w.pid, tree)
        w.close()
        for fd in fds:
            os.close(fd)
        st.kill_reap_all_children()
        shutil.rmtree(imgroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--shape', default='50x16', help='NPROCxMIB[,NPROCxMIB...] (processes x MiB each)')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--dirs', default='/dev/shm', help='image directories, e.g. /dev/shm,/var/tmp')
    ap.add_argument('--no-cold', action='store_true', help='skip the cold runs')
    ap.add_argument('--cold-sleep', type=float, default=15.0, help='idle seconds before a cold restore')
    ap.add_argument('--logs', help='keep `-v --log-file` dump/restore logs of each run in this directory')
    opts = ap.parse_args()
    opts.build = os.path.abspath(opts.build)
    if opts.logs:
        opts.logs = os.path.abspath(opts.logs)
        os.makedirs(opts.logs, exist_ok=True)
    shapes = []
    for s in opts.shape.split(','):
        n, _, m = s.partition('x')
        shapes.append((int(n), int(m)))
    st.make_subreaper()
    modes = ['warm'] if opts.no_cold else ['warm', 'cold']
    print('%9s %6s %-10s %-4s %4s | %8s %6s %5s | %9s %6s %8s %7s %7s | %6s %6s' % (
        'shape', 'MiB', 'dir', 'mode', 'ok', 'dump s', 'GB/s', 'x cp', 'restore s', 'GB/s', 'x memcpy',
        'ms/proc', 'check s', 'cp s', 'memcpy'))
    failed = 0
    for nproc, mib in shapes:
        nbytes = (nproc * mib) << 20
        shape = '%dx%d' % (nproc, mib)
        for target in opts.dirs.split(','):
            for mode in modes:
                runs, errors = [], []
                for i in range(opts.runs):
                    try:
                        runs.append(one_run(opts, nproc, mib, target, mode == 'cold', i))
                    except (RunError, RuntimeError, FileNotFoundError, subprocess.CalledProcessError) as e:
                        errors.append(str(e))
                if not runs:
                    failed += 1
                    print('%9s %6d %-10s %-4s %4s | failed: %s' % (shape, nproc * mib, target, mode,
                                                                   '0/%d' % opts.runs, errors[0]))
                    continue
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                # ratios per run, then the median: copy and stasis in the same run
                rd = statistics.median(r['dump'] / r['cp'] for r in runs)
                rr = statistics.median(r['restore'] / r['memcpy'] for r in runs)
                print('%9s %6d %-10s %-4s %4s | %8.3f %6.2f %5.1f | %9.3f %6.2f %8.1f %7.1f %7.3f | %6.3f %6.3f' % (
                    shape, nproc * mib, target, mode, '%d/%d' % (len(runs), opts.runs), med['dump'],
                    nbytes / med['dump'] / 1e9, rd, med['restore'], nbytes / med['restore'] / 1e9, rr,
                    med['restore'] / nproc * 1e3, med['check'], med['cp'], med['memcpy']))
                for e in errors:
                    print('       run failed: %s' % e)
                    failed += 1
                sys.stdout.flush()
    print('(times are medians; "x cp" = dump time / `cp -r` of the image, "x memcpy" = restore time / memcpy '
          'of the same bytes, both measured in the same run; ms/proc = restore time / processes; check s = '
          'the restored tree reading all its memory afterwards, where a first touch of pages another '
          'process wrote costs extra on these VMs, DESIGN.md 7)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
