# SPDX-License-Identifier: LGPL-2.1-or-later
"""The CLI's front door: `stasis --help`, `stasis CMD --help`, the man page
and `make install`. The help is made from each command's option table
(src/cli/cli-options.h), so it is the truth about what the parser accepts;
these tests check that the parser agrees with it option by option, and
that docs/stasis.1.scd describes every command and option and no option
that does not exist. Used by run.py."""
import os
import re
import shutil
import subprocess

import stasistest as st
from runner import Test, TestFail

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANPAGE = os.path.join(ROOT, 'docs', 'stasis.1.scd')
# "  -D, --checkpoint-dir DIR  help" or "      --json  help"
OPTION_LINE = re.compile(r'^  (?:-(\w), |    )--([\w-]+)(?: (\S+)|(\[=\w+\]))?  +\S')


def run(stasis, args, env=None):
    return st.run_cmd([stasis] + args, timeout=10, env=env)


def commands(stasis):
    """The commands `stasis --help` lists."""
    res = run(stasis, ['--help'])
    if res.rc != 0:
        raise TestFail('stasis --help %s' % res.what())
    m = re.search(r'^commands:\n((?:  \S.*\n)+)', res.out, re.M)
    if not m:
        raise TestFail('stasis --help lists no commands:\n%s' % res.out)
    return [line.split()[0] for line in m.group(1).splitlines()]


def options(stasis, cmd):
    """[(short letter or None, long name, argument name or None)] of `stasis CMD --help`."""
    res = run(stasis, [cmd, '--help'])
    if res.rc != 0 or not res.out.startswith('usage: stasis %s' % cmd):
        raise TestFail('stasis %s --help %s: %r' % (cmd, res.what(), res.out[:200]))
    opts = [OPTION_LINE.match(line) for line in res.out.splitlines()]
    opts = [m.groups()[:3] if not m.group(4) else (m.group(1), m.group(2), m.group(4)) for m in opts if m]
    if not opts:
        raise TestFail('stasis %s --help lists no options' % cmd)
    return opts


def check_parser(stasis, cmd, short, name, arg):
    """The parser takes --name (and -short) with an argument exactly when
    the help says so; nothing runs: each call stops at a usage error or at
    --help. An optional argument ("[=LEVEL]") is checked with a bad value."""
    if arg and arg.startswith('['):
        res = run(stasis, [cmd, '--%s=x' % name])
        if res.rc != 2 or '--' + name not in res.err:
            raise TestFail('stasis %s --%s=x: expected exit 2 naming the option, got %s' % (cmd, name, res.what()))
        return
    res = run(stasis, [cmd, '--' + name] if arg else [cmd, '--%s=x' % name])
    want = 'needs an argument' if arg else 'takes no argument'
    if res.rc != 2 or want not in res.err:
        raise TestFail('stasis %s --%s: expected exit 2 and "%s", got %s' % (cmd, name, want, res.what()))
    if not short:
        return
    if arg:
        res = run(stasis, [cmd, '-' + short])
        ok = res.rc == 2 and 'needs an argument' in res.err
    else:
        res = run(stasis, [cmd, '-' + short, '--help'])
        ok = res.rc == 0 and res.out.startswith('usage:')
    if not ok:
        raise TestFail('stasis %s -%s (%s an argument): %s' % (cmd, short, 'with' if arg else 'without', res.what()))


def sections(text):
    """{'dump': text of "## dump", ..., 'COMMON OPTIONS': ...} of the scdoc source."""
    out = {}
    for m in re.finditer(r'^#{1,2} ([^\n]+)\n(.*?)(?=^#{1,2} |\Z)', text, re.M | re.S):
        out[m.group(1).strip()] = m.group(2)
    return out


def mentions(text, opt):
    return re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(opt), text) is not None


def t_manpage(ctx):
    stasis = ctx.r.stasis
    with open(MANPAGE) as f:
        text = f.read()
    sec = sections(text)
    common = sec.get('COMMON OPTIONS', '')
    known = {'--version'}
    cmds = commands(stasis)
    for cmd in ('dump', 'restore', 'inspect', 'check'):
        if cmd not in cmds:
            raise TestFail('stasis --help does not list %s' % cmd)
    for cmd in cmds:
        if cmd not in sec:
            raise TestFail('%s has no "## %s" section' % (MANPAGE, cmd))
        for short, name, arg in options(stasis, cmd):
            check_parser(stasis, cmd, short, name, arg)
            known.add('--' + name)
            for opt in ['--' + name] + (['-' + short] if short else []):
                if not mentions(sec[cmd], opt) and not mentions(common, opt):
                    raise TestFail('the man page says nothing of %s %s (in "## %s" or COMMON OPTIONS)'
                                   % (cmd, opt, cmd))
    stale = sorted(set(re.findall(r'(?<![\w-])--[a-z][\w-]*', text)) - known)
    if stale:
        raise TestFail('the man page names options no command takes: %s' % ', '.join(stale))
    built = os.path.join(ctx.r.build, 'docs', 'stasis.1')
    if shutil.which('scdoc') and not os.path.exists(built):
        raise TestFail('scdoc is installed but the build has no %s' % built)


def find_installed(root, rel):
    """The file root/**/rel."""
    for d, _, files in os.walk(root):
        p = os.path.join(d, os.path.basename(rel))
        if os.path.basename(rel) in files and p.endswith('/' + rel):
            return p
    raise TestFail('make install put no %s under %s' % (rel, root))


def t_install(ctx):
    """meson's install into a DESTDIR (what `make install` runs), then a
    dump and restore of a sleep with the installed binary and the stub it
    finds by itself."""
    dest = ctx.path('destdir')
    res = st.run_cmd(['meson', 'install', '-C', ctx.r.build, '--no-rebuild', '--destdir', dest], timeout=60)
    if res.rc != 0:
        raise TestFail('meson install %s' % res.what())
    stasis = find_installed(dest, 'bin/stasis')
    prefix = os.path.dirname(os.path.dirname(stasis))
    find_installed(prefix, 'libexec/stasis/stasis-stub')
    if shutil.which('scdoc'):
        find_installed(prefix, 'share/man/man1/stasis.1')
    env = {k: v for k, v in os.environ.items() if k != 'STASIS_STUB'}
    res = run(stasis, ['--help'], env=env)
    if res.rc != 0 or 'restore' not in res.out:
        raise TestFail('installed stasis --help %s' % res.what())
    p = subprocess.Popen(['sleep', '1000'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    try:
        img = ctx.path('img')
        res = st.run_cmd([stasis, 'dump', '--type', 'process', '--pid', str(p.pid), '-D', img], timeout=30, env=env)
        if res.rc != 0:
            raise TestFail('installed stasis dump %s' % res.what())
        p.wait(10)
        res = st.run_cmd([stasis, 'restore', '-D', img, '--detach'], timeout=30, env=env)
        if res.rc != 0:
            raise TestFail('installed stasis restore %s' % res.what())
        pid = int(res.out.split()[-1])
        with open('/proc/%d/comm' % pid) as f:
            comm = f.read().strip()
        st.kill_reap(pid)
        if pid != p.pid or comm != 'sleep':
            raise TestFail('restored pid %d (%s), expected %d (sleep)' % (pid, comm, p.pid))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


TESTS = [Test('cli:manpage', t_manpage, 30), Test('cli:install', t_install, 60)]
