/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a process shares with another process (not its threads): its fd
 * table (CLONE_FILES), its fs info (CLONE_FS: cwd, root, umask), its
 * memory and signal handlers (CLONE_VM, CLONE_SIGHAND). Found with kcmp at
 * dump, made again on restore by forking with the same flags. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "engine/tree.h"

#define SHARE_FILES 1u /* its fd table is its parent's */
#define SHARE_FS 2u    /* its cwd, root and umask are its parent's */
#define SHARE_VM 4u    /* its memory is its parent's (CLONE_VM) */
#define SHARE_SIGHAND 8u /* its signal handlers are its parent's (needs SHARE_VM) */

/* Sets every live node's share (what it shares with its parent, or with
 * the sibling share_with) and refuses, with one line naming both pids,
 * sharing that the restore cannot make again: a vfork child before its
 * exec, memory or handlers shared with a process other than the parent,
 * a table or fs info shared with one that is neither the parent nor a
 * sibling (or with a sibling in another session). */
int share_collect(struct tree *t);
/* The test of one node: -EOPNOTSUPP (logged) when the dump refuses it
 * (stasis check goes through them all). */
int share_check_node(const struct tree *t, size_t i);
/* clone flags that make node n share what it shared with its parent
 * (or its sibling share_with: CLONE_PARENT too). */
unsigned long share_clone_flags(const struct tree_node *n);
/* The process whose stub makes n on restore: its sibling share_with, or
 * its parent. */
pid_t share_maker(const struct tree_node *n);
/* Whether process i of the tree restores its fd table: of processes
 * sharing one table, the last in tree order does it (the others keep the
 * transport in it meanwhile). */
bool share_restores_files(const struct tree *t, size_t i);
/* The topmost process of i's chain of CLONE_FILES forks (i itself when
 * its table is its own): the fds are restored as that process's. */
size_t share_files_owner(const struct tree *t, size_t i);
/* Whether process i of the tree removes the restore's scratch mapping:
 * of processes sharing one address space, the last in tree order (the
 * others use the same mapping until then). */
bool share_restores_mm_last(const struct tree *t, size_t i);
