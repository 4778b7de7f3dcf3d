/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Things that lost their name while open: a regular file, a directory or
 * a FIFO that was unlinked (or whose directory was removed). /proc shows
 * them as "PATH (deleted)". Restore makes a new one of the same type with
 * no name: created under the old name (or a sibling name when that is
 * taken) and unlinked at once, so /proc shows the same path; when its
 * directory is gone too, in the deepest directory above that is left
 * (a regular file there with O_TMPFILE), and where no directory takes
 * one, a memfd for a file or a plain pipe for a FIFO. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The link text ends in " (deleted)". */
bool path_deleted(const char *link);
/* Our fd to a new unnamed object of type (S_IFREG: read-write, S_IFDIR:
 * read-only, S_IFIFO: read-write and non-blocking) for path as /proc
 * showed it, in the processes' root fsroot. */
int deleted_make(const char *fsroot, const char *path, mode_t type);

struct files_ctx;
struct remote;
/* A working directory that was removed: made again (once per path for
 * the whole tree), passed in on the transport fd tfd and entered with
 * fchdir. task_restore leaves such a cwd alone. */
int deleted_restore_cwd(struct files_ctx *c, struct remote *r, pid_t tid, int tfd, const char *cwd);

struct files_proc;
/* files-reg.c: is the deleted file or removed directory that was inode
 * ino of device dev at dump held open by an fd of the tree (v[0..n))?
 * And our fd to it on restore (made now if need be), -ENOENT if none. */
bool deleted_object_held(const struct files_proc *v, size_t n, uint64_t dev, uint64_t ino);
int deleted_object_get(struct files_ctx *c, uint64_t dev, uint64_t ino);
