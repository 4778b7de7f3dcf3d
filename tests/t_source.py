# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shape of the source: the layers' arrows point down only
(cli -> runtime -> engine -> image -> util, DESIGN.md §3) and no module is
part of an include circle (tests/check-includes.py)."""
import os
import re
import subprocess
import sys

from runner import Test, TestFail

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), 'src')

# What each layer may include of ours, besides itself.
BELOW = {
    'cli': ('runtime', 'util'),
    'runtime': ('engine', 'image', 'util'),
    'engine': ('image', 'util'),
    'image': ('util',),
    'util': (),
    'stub': (),
}


def t_layers(ctx):
    bad = []
    for layer, allowed in BELOW.items():
        d = os.path.join(SRC, layer)
        for name in sorted(os.listdir(d)):
            if not name.endswith(('.c', '.h')):
                continue
            with open(os.path.join(d, name), errors='replace') as f:
                for inc in re.findall(r'^\s*#\s*include\s+"([a-z]+)/', f.read(), re.M):
                    if inc != layer and inc not in allowed:
                        bad.append('%s/%s includes %s/' % (layer, name, inc))
    if bad:
        raise TestFail('arrows must point down: ' + '; '.join(bad))


def t_circles(ctx):
    r = subprocess.run([sys.executable, os.path.join(HERE, 'check-includes.py'), SRC], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise TestFail((r.stdout + r.stderr).strip().replace('\n', '; '))


TESTS = [Test('src:layers', t_layers, 30), Test('src:include-circles', t_circles, 30)]
