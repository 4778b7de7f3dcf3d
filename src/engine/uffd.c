/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define PG 4096ULL

/* Events that change the address space reach us, so that a page is never
 * filled where the process removed or moved it meanwhile, and a child it
 * forks gets the pages not in yet too. */
#define FEATURES (UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP | \
		  UFFD_FEATURE_EVENT_FORK)

static int api(int uffd, uint64_t features)
{
	struct uffdio_api a = { .api = UFFD_API, .features = features };
	return ioctl(uffd, UFFDIO_API, &a) < 0 ? -errno : 0;
}

/* The process's fd u, taken out and closed there, with the API agreed. */
static int take(struct remote *r, pid_t tid, int pidfd, long u, uint64_t features, int *ret_uffd, const char **what)
{
	int ours = fdpass_take(pidfd, (int)u);
	remote_syscall(r, tid, SYS_close, u);
	if (ours < 0)
		return *what = "take", ours;
	int e = api(ours, features);
	if (e < 0) {
		close(ours);
		return *what = "api", e;
	}
	*ret_uffd = ours;
	return 0;
}

/* Whether the process runs under no seccomp filter: one that refuses
 * the call (Docker's default profile does) might kill the process. */
static bool unfiltered(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	struct proc_status st;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	return proc_read(AT_FDCWD, path, &buf, &len) >= 0 && proc_parse_status(buf, len, &st) >= 0 && !st.seccomp;
}

/* The process makes a userfaultfd: by the system call (one remote call
 * less) where no seccomp filter may object, else (or refused: no
 * privilege) through /dev/userfaultfd passed in. Not logged: *what says
 * which step failed. */
static int open_in(struct remote *r, pid_t tid, int ctl, int tfd, int pidfd, int flags, uint64_t features,
		   int *ret_uffd, const char **what)
{
	long sys = unfiltered(tid) ? remote_syscall(r, tid, SYS_userfaultfd, flags) : -EPERM;
	if (sys >= 0)
		return take(r, tid, pidfd, sys, features, ret_uffd, what);
	_cleanup_close_ int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return *what = "open", -errno;
	long in = fdpass_push(r, tid, ctl, tfd, dev);
	if (in < 0)
		return *what = "pass", (int)in;
	long u = remote_syscall(r, tid, SYS_ioctl, in, USERFAULTFD_IOC_NEW, flags);
	remote_syscall(r, tid, SYS_close, in);
	if (u < 0)
		return *what = "make", (int)u;
	return take(r, tid, pidfd, u, features, ret_uffd, what);
}

int uffd_open_in(struct remote *r, pid_t tid, int ctl, int tfd, int pidfd, int *ret_uffd)
{
	const char *what = "";
	int e = open_in(r, tid, ctl, tfd, pidfd, O_CLOEXEC | O_NONBLOCK, FEATURES, ret_uffd, &what);
	if (e >= 0)
		return 0;
	if (streq(what, "open"))
		return log_error_errno(e, "cannot open /dev/userfaultfd for a lazy restore: %m; restore without --lazy");
	if (streq(what, "pass"))
		return log_error_errno(e, "pid %d: cannot pass /dev/userfaultfd in: %m", r->pid);
	if (streq(what, "make"))
		return log_error_errno(e, "pid %d: cannot make a userfaultfd: %m", r->pid);
	if (streq(what, "take"))
		return log_error_errno(e, "pid %d: cannot take its userfaultfd: %m", r->pid);
	return log_error_errno(e, "pid %d: userfaultfd refuses the events a lazy restore needs: %m", r->pid);
}

/* User faults only: a write by the kernel (a syscall, process_vm_writev)
 * into a registered page not in fails with EFAULT instead of waiting for
 * us. */
int uffd_open_bare(struct remote *r, pid_t tid, int ctl, int tfd, int pidfd, int *ret_uffd, const char **ret_what)
{
	return open_in(r, tid, ctl, tfd, pidfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, ret_uffd, ret_what);
}

int uffd_register(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_register g = { .range = { start, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	return ioctl(uffd, UFFDIO_REGISTER, &g) < 0 ? -errno : 0;
}

int uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len)
{
	uint64_t done = 0;
	while (done < len) {
		struct uffdio_copy c = { .dst = dst + done, .src = (uint64_t)src + done, .len = len - done };
		int e = ioctl(uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
		if (c.copy > 0)
			done += (uint64_t)c.copy;
		if (e == -EEXIST && c.copy <= 0)
			done += PG; /* present already (faulted in, or moved here) */
		else if (e < 0 && e != -EAGAIN && e != -EEXIST)
			return e;
	}
	return 0;
}

int uffd_zero(int uffd, uint64_t addr, uint64_t len)
{
	struct uffdio_zeropage z = { .range = { addr, len } };
	int e = ioctl(uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
	return e == -EEXIST || e == -EAGAIN ? uffd_wake(uffd, addr, len) : e;
}

int uffd_wake(int uffd, uint64_t addr, uint64_t len)
{
	struct uffdio_range g = { addr, len };
	return ioctl(uffd, UFFDIO_WAKE, &g) < 0 ? -errno : 0;
}
