/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where the processes' own paths are, seen from the controller. Normally
 * they share our root (""). For a container, the controller works from the
 * container's pid namespace but keeps the host's mounts (so the image
 * stays reachable): its paths are then reached through a prefix such as
 * "/proc/1/root", which the runtime layer passes in the restore options
 * and the engine keeps in its contexts. Only what the controller itself
 * opens by a process's path goes through this; what a process opens
 * itself (remote_open) needs nothing. */
#pragma once

#include <stddef.h>

/* root + path into buf (root NULL means ""); returns buf, or NULL when it
 * does not fit. */
const char *fsroot_path(const char *root, const char *path, char *buf, size_t size);
