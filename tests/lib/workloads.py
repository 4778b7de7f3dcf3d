#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ZDTM-style workloads and what they declare about themselves.

Every tests/zdtm/*.c but the helper library zdtmtst.c is one workload
(or part of one) and says in a comment line what it needs:

    stasis-test: NAME [args="..."] [stdin="..."] [timeout=S] [iterations=N]
                      [asan=yes|no] [dump=yes|no]
                      [dump_args="..."] [restore_args="..."]
    stasis-build: [c_args="..."] [part-of=WORKLOAD]

tests/README.md explains the keys. The test runner (tests/t_zdtm.py) reads
the stasis-test lines to make its tests; Meson runs this file at configure
time (`workloads.py meson OUTDIR`) to learn what to compile, and the
Makefile compares that list with the one Meson last saw (`workloads.py
meson`) to reconfigure when a workload was added, removed or its build
line changed: Meson does not look into directories by itself.
Python 3 stdlib only; parse errors name the file and line.
"""
import os
import re
import shlex
import sys

ZDTM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'zdtm')
LIBRARY = 'zdtmtst.c'  # linked into every workload, built by tests/zdtm/meson.build
LINE = re.compile(r'^[\s/*]*stasis-(test|build):(.*?)(?:\*/)?\s*$')
TEST_KEYS = {'args', 'stdin', 'timeout', 'iterations', 'asan', 'dump', 'dump_args', 'restore_args'}
BUILD_KEYS = {'c_args', 'part-of'}


class Decl:
    """One stasis-test line: a test of the workload `workload`."""

    def __init__(self, workload, name, where):
        self.workload, self.name, self.where = workload, name, where
        self.args, self.stdin, self.timeout, self.iterations = (), None, 60, 1
        self.asan, self.dump = True, True
        self.dump_args, self.restore_args = (), ()


class Workload:
    """One source file: its build needs and the tests it declares."""

    def __init__(self, path):
        self.path = path
        self.source = os.path.basename(path)
        self.name = self.source[:-2]
        self.c_args, self.part_of, self.has_build = [], None, False
        self.tests = []


def _unescape(s):
    return re.sub(r'\\(.)', lambda m: {'n': '\n', 't': '\t'}.get(m.group(1), m.group(1)), s)


def _yes_no(v, where, key):
    if v not in ('yes', 'no'):
        raise ValueError('%s: %s must be yes or no, not %r' % (where, key, v))
    return v == 'yes'


def _int(v, where, key):
    if not v.isdigit():
        raise ValueError('%s: %s must be a number, not %r' % (where, key, v))
    return int(v)


def _pairs(text, where, keys):
    try:
        words = shlex.split(text, comments=True)
    except ValueError as e:
        raise ValueError('%s: %s' % (where, e))
    head, pairs = [], {}
    for w in words:
        k, eq, v = w.partition('=')
        if not eq:
            head.append(w)
        elif k not in keys:
            raise ValueError('%s: unknown key %r (known: %s)' % (where, k, ', '.join(sorted(keys))))
        else:
            pairs[k] = v
    return head, pairs


def _test_line(wl, text, where):
    head, kv = _pairs(text, where, TEST_KEYS)
    if len(head) != 1:
        raise ValueError('%s: a stasis-test line names one test first, then key=value pairs' % where)
    d = Decl(wl.name, head[0], where)
    d.args = tuple(shlex.split(kv.get('args', '')))
    d.stdin = _unescape(kv['stdin']) if 'stdin' in kv else None
    d.timeout = _int(kv.get('timeout', '60'), where, 'timeout')
    d.iterations = _int(kv.get('iterations', '1'), where, 'iterations')
    d.asan = _yes_no(kv.get('asan', 'yes'), where, 'asan')
    d.dump = _yes_no(kv.get('dump', 'yes'), where, 'dump')
    d.dump_args = tuple(shlex.split(kv.get('dump_args', '')))
    d.restore_args = tuple(shlex.split(kv.get('restore_args', '')))
    wl.tests.append(d)


def _build_line(wl, text, where):
    if wl.has_build:
        raise ValueError('%s: a second stasis-build line' % where)
    head, kv = _pairs(text, where, BUILD_KEYS)
    if head:
        raise ValueError('%s: stasis-build takes only key=value pairs, not %r' % (where, head[0]))
    wl.has_build = True
    wl.c_args = shlex.split(kv.get('c_args', ''))
    wl.part_of = kv.get('part-of')
    if any(not re.fullmatch(r'[^\s,]+', a) for a in wl.c_args):
        raise ValueError('%s: c_args may not contain commas or empty words' % where)


def parse_file(path):
    wl = Workload(path)
    with open(path, errors='replace') as f:
        for n, line in enumerate(f, 1):
            m = LINE.match(line)
            if m:
                where = '%s:%d' % (os.path.relpath(path), n)
                (_test_line if m.group(1) == 'test' else _build_line)(wl, m.group(2), where)
    if not wl.tests and not wl.has_build:
        raise ValueError('%s: declares nothing: add a `stasis-test:` line, or `stasis-build:` for a '
                         'workload only other tests start (see tests/README.md)' % os.path.relpath(path))
    if wl.part_of and wl.tests:
        raise ValueError('%s: a part-of file declares no tests of its own' % os.path.relpath(path))
    return wl


def parse_dir(d=ZDTM_DIR):
    """All workloads of d, sorted by file name; raises ValueError naming the
    file and line of the first mistake."""
    wls = [parse_file(os.path.join(d, f)) for f in sorted(os.listdir(d))
           if f.endswith('.c') and f != LIBRARY]
    names = {w.name for w in wls if not w.part_of}
    seen = {}
    for w in wls:
        if w.part_of and w.part_of not in names:
            raise ValueError('%s: part-of=%s names no workload' % (w.source, w.part_of))
        for t in w.tests:
            if t.name in seen:
                raise ValueError('%s: test %s is already declared at %s' % (t.where, t.name, seen[t.name]))
            seen[t.name] = t.where
    return wls


def meson_lines(wls):
    """What to compile, one target a line, parts before the workloads:
    `part NAME SOURCE C_ARGS OWNER` and `workload NAME SOURCE C_ARGS`, with
    C_ARGS comma-separated or `-`."""
    out = []
    for w in sorted(wls, key=lambda w: (w.part_of is None, w.name)):
        c_args = ','.join(w.c_args) or '-'
        if w.part_of:
            out.append('part %s %s %s %s' % (w.name, w.source, c_args, w.part_of))
        else:
            out.append('workload %s %s %s' % (w.name, w.source, c_args))
    return ''.join(l + '\n' for l in out)


def main(argv):
    if len(argv) not in (2, 3) or argv[1] != 'meson':
        print('usage: workloads.py meson [OUTDIR]', file=sys.stderr)
        return 2
    try:
        text = meson_lines(parse_dir())
    except ValueError as e:
        print('workloads.py: %s' % e, file=sys.stderr)
        return 1
    if len(argv) == 3:  # remember what Meson was told, for the Makefile's check
        os.makedirs(argv[2], exist_ok=True)
        with open(os.path.join(argv[2], 'workloads.txt'), 'w') as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
