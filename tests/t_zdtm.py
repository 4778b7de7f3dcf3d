# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ZDTM-style workloads of tests/zdtm/, as their stasis-test lines
declare them (tests/lib/workloads.py reads them): each is started, dumped
and restored `iterations` times, compared before and after, signalled and
must print PASS. Tests with asan=yes run again as asan:NAME with the
stasis of the ASan/UBSan build, with twice the time."""
import json
import os
import subprocess

from runner import Test, TestFail
from checks import dump_restore_cycle
import workloads


def t_zdtm(ctx, name, args, stdin_line, iters, binary, extra=((), ())):
    """Dump and restore `iters` times (0: only signal), then expect PASS.
    extra: the declaration's dump_args and restore_args."""
    w = ctx.workload(name, args)
    try:
        for i in range(iters):
            dump_restore_cycle(ctx, w, str(i), binary=binary, dump_extra=extra[0], restore_extra=extra[1])
    finally:
        for i in range(iters):
            drop_image_lock(ctx.path('img-%d' % i))
    err = w.finish(ctx.left(60), stdin_line)
    if err:
        raise TestFail(err)


def drop_image_lock(img):
    """A dump with --tcp-established hands its network lock to the image
    (an nftables table named in the manifest) and only a restore that
    succeeds removes it: after a failed one, the test removes it, so that
    no rule of ours outlives the test."""
    try:
        with open(os.path.join(img, 'manifest.json')) as f:
            table = (json.load(f).get('netlock') or {}).get('table')
    except (OSError, ValueError):
        return
    if table and table.startswith('stasis-image-'):
        subprocess.run(['nft', 'delete', 'table', 'inet', table], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def t_bad_declarations(ctx, msg):
    raise TestFail(msg)


def no_dump_tests(decls):
    """--no-dump: each workload invocation once, without dumping; a test
    that only repeats another with more iterations adds nothing."""
    seen, out = set(), []
    for d in decls:
        key = (d.workload, d.args, d.stdin)
        if key not in seen:
            seen.add(key)
            out.append(Test(d.name, t_zdtm, d.timeout, d.workload, d.args, d.stdin, 0, None))
    return out


def tests(r):
    try:
        decls = [d for w in workloads.parse_dir() for d in w.tests]
    except ValueError as e:
        return [Test('zdtm:declarations', t_bad_declarations, 10, str(e))]
    if r.opts.no_dump:
        return no_dump_tests(decls)
    out = [Test(d.name, t_zdtm, d.timeout, d.workload, d.args, d.stdin, d.iterations, None,
                (d.dump_args, d.restore_args)) for d in decls if d.dump]
    if r.asan_stasis:
        out += [Test('asan:' + d.name, t_zdtm, d.timeout * 2, d.workload, d.args, d.stdin, d.iterations,
                     r.asan_stasis, (d.dump_args, d.restore_args)) for d in decls if d.dump and d.asan]
    return out
