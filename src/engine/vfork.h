/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A parent waiting in vfork for its child's exec (vfork.c). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Whether pid is stopped in vfork (or clone/clone3 with CLONE_VFORK). */
bool vfork_waiting(pid_t pid);
/* -EOPNOTSUPP, logged as one line naming the vfork child and its parent. */
int vfork_refuse(pid_t child, pid_t parent);
/* vfork_refuse when pid waits in vfork, else 0: checked before the seize,
 * which such a wait would never let stop. */
int vfork_check(pid_t pid);
