/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* userfaultfd: a restored process's missing pages reported to us, and
 * filled by us (UFFDIO_COPY) from another process. The fd is made inside
 * the process (it belongs to the process's mm) and then taken out. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "engine/remote.h"

/* Makes a userfaultfd for the address space of the stopped stub tid, from
 * /dev/userfaultfd opened by us (a container's seccomp profile may refuse
 * the userfaultfd syscall; the device needs no capability in there), and
 * returns our copy, with the API negotiated. pidfd: the stub's. */
int uffd_open_in(struct remote *r, pid_t tid, int ctl, int tfd, int pidfd, int *ret_uffd);
/* The same without events (nothing reads the fd: memory filled while the
 * process is stopped), for faults in user mode only (a kernel access to a
 * page not in fails at once), and not logged: -errno, and *ret_what names
 * the step that failed ("open", "pass", "make", "take", "api"). */
int uffd_open_bare(struct remote *r, pid_t tid, int ctl, int tfd, int pidfd, int *ret_uffd, const char **ret_what);
/* Missing-page faults in [start, start+len) come to the fd. */
int uffd_register(int uffd, uint64_t start, uint64_t len);
/* Copies len bytes to dst (page aligned) and wakes who waits on them.
 * Pages already present are left as they are. -ENOENT: the range is not
 * (or no more) registered, -ESRCH: the process is gone. */
int uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len);
/* Maps zero pages (memory the original never touched). */
int uffd_zero(int uffd, uint64_t addr, uint64_t len);
int uffd_wake(int uffd, uint64_t addr, uint64_t len);
