/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "engine/syscalls.h"

/* clone3 with CLONE_VM | CLONE_VFORK added to a->flags: the child runs
 * fn(arg) on `stack` (size bytes, ours) in our memory, and we wait until
 * it executes a program or exits. Unlike fork, nothing of our address
 * space is copied or write-protected, so neither the clone nor our next
 * writes (copy-on-write faults, slow on these machines: DESIGN.md §7)
 * cost us. fn must only make system calls and must never return.
 * Returns the child's pid or -errno. */
long clone3_vm(struct clone_args_v2 *a, void *stack, size_t size, void (*fn)(void *), void *arg);
