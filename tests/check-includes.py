#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Finds include circles among the files of src/.

    python3 tests/check-includes.py [SRC_DIR]

A module is a .c file and the .h of the same name (engine/files.c and
engine/files.h are one module, engine/sk-diag.h without a .c is one of its
own). Module A depends on module B when a file of A has `#include "B.h"`.
Two modules that depend on each other, directly or through others, form a
circle: neither can be understood (or built, or replaced) without the
other. Prints every circle, one a line, and exits 1 when there is any;
prints nothing and exits 0 when there is none.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(src):
    """{module: set of modules it includes}"""
    files = {}
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith(('.c', '.h')):
                p = os.path.join(d, n)
                with open(p, errors='replace') as f:
                    files[os.path.relpath(p, src)] = INCLUDE.findall(f.read())
    graph = {}
    for path, incs in files.items():
        mod = os.path.splitext(path)[0]
        graph.setdefault(mod, set())
        for inc in incs:
            # "engine/files.h" from the top, or "x.h" next to the file
            target = inc if inc in files else os.path.normpath(os.path.join(os.path.dirname(path), inc))
            if target in files and os.path.splitext(target)[0] != mod:
                graph[mod].add(os.path.splitext(target)[0])
    return graph


def circles(graph):
    """Strongly connected components of more than one module (Tarjan,
    without recursion so that a long chain cannot overflow the stack)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
    found = circles(modules(src))
    for c in found:
        print('include circle: %s' % ' <-> '.join(c))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
