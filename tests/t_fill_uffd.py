# SPDX-License-Identifier: LGPL-2.1-or-later
"""The eager fill through a userfaultfd (engine/mm-fill-uffd.c): a page
file of 8 MiB or more goes in with UFFDIO_COPY (the restore log says so),
STASIS_FILL_UFFD=0 goes back to process_vm_writev and =1 takes the
userfaultfd for every process (a tree whose children inherit their
parent's pages); a failure while the memory is registered fails the
restore with one line, leaves no process behind, and the image restores
afterwards. zdtm/fillmaps.c covers the layouts the copies must split."""
import stasistest as st
from runner import Test, TestFail
from checks import expect_killed, expect_one_line, restore_again
from t_fill import dumped_tree, expect_tree_gone


def restore_log_says(ctx, img, words, want):
    log = open(img + '-restore.log').read()
    if (words in log) != want:
        raise TestFail('the restore log %s "%s"' % ('does not say' if want else 'says', words))


def t_bigmem(ctx, env, uffd):
    w = ctx.workload('bigmem', ['64'])
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    _, pid, wfd = ctx.restore(img, env=env)
    restore_log_says(ctx, img, 'MiB of pages in', True)
    restore_log_says(ctx, img, ', UFFDIO_COPY ', uffd)
    restore_log_says(ctx, img, ', process_vm_writev ', not uffd)
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(60))
    if err:
        raise TestFail(err)


def t_tree(ctx):
    w, tree, img = dumped_tree(ctx)
    _, pid, wfd = ctx.restore(img, env={'STASIS_FILL_UFFD': '1'})
    if st.tree_info(pid) != tree:
        raise TestFail('the restored tree differs from the dumped one')
    w.set_stdin(wfd)
    ctx.fds.remove(wfd)
    err = w.finish(ctx.left(30))
    if err:
        raise TestFail(err)


def t_inject(ctx):
    w = ctx.workload('bigmem', ['64'])
    img = ctx.path('img')
    ctx.dump(w.pid, img)
    expect_killed(w.pid)
    res, _, _ = ctx.restore(img, env={'STASIS_INJECT_FAIL': 'restore:fill-uffd'}, expect_ok=False, quiet=True)
    expect_one_line(res, 'restore failing while its memory is registered', 'injected failure at restore:fill-uffd')
    expect_tree_gone([w.pid], 'the failed restore')
    restore_again(ctx, img, w.pid, w, ctx.left(60))


TESTS = [
    Test('fill:uffd-default', t_bigmem, 120, None, True),
    Test('fill:uffd-off', t_bigmem, 120, {'STASIS_FILL_UFFD': '0'}, False),
    Test('fill:uffd-tree', t_tree, 120),
    Test('fill:uffd-inject', t_inject, 120),
]
