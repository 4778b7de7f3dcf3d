/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Terminals of the tree (tty.c): what the dump and the tree builder need
 * beyond the fd kinds `ptmx`, `pts` and `tty`. */
#pragma once

#include <sys/types.h>

#include "engine/files.h"
#include "engine/remote.h"
#include "engine/tree.h"

/* Dump, once the tree's fds are linked: refuses a session leader whose
 * controlling terminal is not a pty of the tree, and a pty of the tree
 * that controls a session outside it (naming pid and fd). Forgets a
 * foreground group that no process of the tree is in. */
int tty_check_sessions(const struct tree *t, struct files_proc *v, size_t n);
/* Restore, in session leader pid right after its setsid() and before it
 * forks: makes the pty that was its controlling terminal (if one of the
 * tree's) and takes it as such (TIOCSCTTY). */
int tty_restore_ctty(struct files_ctx *c, struct remote *r, pid_t pid);
/* Restore, once every process group exists: puts the saved foreground
 * group of session pid's terminal back (TIOCSPGRP). */
int tty_restore_fg(struct files_ctx *c, struct remote *r, pid_t pid);
