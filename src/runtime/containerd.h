/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* containerd, reached through its client ctr (containerd.c; containers of
 * namespaces other than Docker's: containerd-native.c). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "runtime/runtime.h"

/* containerd's socket path, into buf: `given` (--address) or
 * $CONTAINERD_ADDRESS as they are, else the containerd of a running
 * dockerd (first for namespace "moby") or /run/containerd/containerd.sock,
 * whichever has a socket. -ENOENT (logged) when none is found. */
int containerd_address(const char *given, const char *ns, char *buf, size_t size);

/* The host pid of the running task id in namespace ns (`ctr task ls`). */
int containerd_task_pid(const char *address, const char *ns, const char *id, pid_t *ret);

/* containerd-native.c: a container of namespace ns that containerd itself
 * runs (not Docker's), described from `ctr containers info` and its
 * overlayfs snapshot; restored as a new containerd container of the same
 * image whose first process is the stub. */
int ctrd_native_locate(const char *address, const char *ns, const char *id, pid_t pid, struct rt_found *ret);
int ctrd_native_create_sandbox(struct image *img, const json_t *meta, const json_t *config, const char *new_id,
			       const char *stub_path, int stub_tfd, struct rt_sandbox *sb);
void ctrd_native_finish(struct rt_sandbox *sb, bool ok);
