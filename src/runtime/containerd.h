/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* containerd, reached through its client ctr (containerd.c). */
#pragma once

#include <stddef.h>

/* containerd's socket path, into buf: `given` (--address) or
 * $CONTAINERD_ADDRESS as they are, else the containerd of a running
 * dockerd (first for namespace "moby") or /run/containerd/containerd.sock,
 * whichever has a socket. -ENOENT (logged) when none is found. */
int containerd_address(const char *given, const char *ns, char *buf, size_t size);
