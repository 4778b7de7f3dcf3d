#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""stasis test runner: unit tests, ZDTM-style workloads through dump and
restore, CLI tests, failure paths, real programs and containers.

    python3 tests/run.py --build build [--asan-build build-asan] [-k PATTERN] [-v]

Prints `ok NAME`, `FAIL NAME: reason` or `skip NAME: reason` per test, then
`N passed, N failed[, N skipped]`; exits 1 when a test failed. Under
CI=true a skip counts as a failure. tests/README.md says how to add a test.

The tests live in modules that each expose TESTS (a list of runner.Test)
or tests(runner) returning one: t_zdtm (the workloads of tests/zdtm/, from
what each declares), t_cli, t_failures, t_trust, t_interrupt, programs, t_terminals,
containers, t_containers_pids, t_podman and t_netlock. The
machinery (Runner, Ctx, timeouts, cleanup) is tests/lib/runner.py.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, 'lib'), HERE]

from runner import Runner  # noqa: E402
import t_zdtm  # noqa: E402
import t_sockets  # noqa: E402
import t_cli  # noqa: E402
import t_failures  # noqa: E402
import t_trust  # noqa: E402
import t_interrupt  # noqa: E402
import t_deleted  # noqa: E402
import programs  # noqa: E402
import t_terminals  # noqa: E402
import containers  # noqa: E402
import t_podman  # noqa: E402
import t_manpage  # noqa: E402
import t_source  # noqa: E402
import t_containers_pids  # noqa: E402
import t_netlock  # noqa: E402
import t_cowshare  # noqa: E402
import t_lazy  # noqa: E402
import t_process  # noqa: E402
import t_check  # noqa: E402
import t_tcp  # noqa: E402
import t_tcp_fin  # noqa: E402
import t_compress  # noqa: E402
import t_predump  # noqa: E402
import t_share  # noqa: E402
import t_fill  # noqa: E402
import t_fill_uffd  # noqa: E402
import t_batch  # noqa: E402
import t_drivers  # noqa: E402

MODULES = (t_source, t_zdtm, t_sockets, t_cli, t_manpage, t_failures, t_trust, t_interrupt, programs,
           t_terminals, containers, t_containers_pids, t_podman, t_netlock, t_cowshare, t_lazy, t_deleted,
           t_process, t_check, t_tcp, t_tcp_fin, t_compress, t_predump, t_share, t_fill, t_batch,
           t_drivers, t_fill_uffd)


def collect(r):
    """Every module's tests in module order; the asan: copies last, as they
    are the slow ones. --no-dump runs only the workloads, without dumping."""
    mods = (t_zdtm,) if r.opts.no_dump else MODULES
    tests = [t for m in mods for t in (m.tests(r) if hasattr(m, 'tests') else m.TESTS)]
    names = set()
    for t in tests:
        if t.name in names:
            raise SystemExit('run.py: two tests are named %s' % t.name)
        names.add(t.name)
    return sorted(tests, key=lambda t: t.name.startswith('asan:'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default='build', help='meson build dir with stasis and the workloads')
    ap.add_argument('--asan-build', help='also run the workloads with the stasis of this ASan/UBSan build')
    ap.add_argument('-k', metavar='PATTERN', help='run only tests whose name matches this regex')
    ap.add_argument('-v', '--verbose', action='store_true', help='show commands and log tails')
    ap.add_argument('--no-dump', action='store_true', help='only validate the workloads (SIGUSR1, no dump)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directories')
    ap.add_argument('--list', action='store_true', help='print the names of the selected tests and exit')
    opts = ap.parse_args()
    if not os.path.isdir(opts.build):
        print('run.py: no build directory %s' % opts.build, file=sys.stderr)
        return 2
    r = Runner(opts)
    tests = collect(r)
    if opts.list:
        r.end()
        for t in tests:
            if r.selected(t.name):
                print(t.name)
        return 0
    return r.run_all(tests, unit=not opts.no_dump)


if __name__ == '__main__':
    sys.exit(main())
