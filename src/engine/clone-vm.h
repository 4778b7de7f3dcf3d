/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "engine/syscalls.h"

/* clone3 with CLONE_VM added to a->flags: the child runs fn(arg) on
 * `stack` (size bytes, ours) in our memory until it executes a program
 * or exits (with CLONE_VFORK in a->flags we wait until then, else we go
 * on at once). Unlike fork, nothing of our address space is copied or
 * write-protected, so neither the clone nor our next writes
 * (copy-on-write faults, slow on these machines: DESIGN.md §7) cost us.
 * fn must make system calls only, by raw_syscall when we do not wait
 * (libc's wrappers write errno, which is ours), and never return.
 * Returns the child's pid or -errno. */
long clone3_vm(struct clone_args_v2 *a, void *stack, size_t size, void (*fn)(void *), void *arg);
/* A system call that touches no memory of libc's: -errno on failure. */
long raw_syscall(long nr, long a1, long a2, long a3, long a4);
