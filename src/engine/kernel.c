/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[cap / 32].effective & (1u << (cap % 32));
}

static bool probe_pagemap_scan(void)
{
	_cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region vec[1];
	static char page[4096];
	page[0] = 1;
	struct pm_scan_arg a = { .size = sizeof(a), .start = (uint64_t)page & ~4095ULL,
				 .end = ((uint64_t)page & ~4095ULL) + 4096, .vec = (uint64_t)vec, .vec_len = 1,
				 .category_anyof_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT };
	return fd >= 0 && ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
}

static bool probe_mm_map(void)
{
	unsigned int size = 0;
	return prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size > 0;
}

static bool probe_pidfd(void)
{
	int fd = sys_pidfd_open(getpid(), 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool probe_vm_readv(void)
{
	char a = 1, b = 0;
	struct iovec l = { &b, 1 }, r = { &a, 1 };
	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == 1 && b == 1;
}

static bool probe_vdso(void)
{
	_cleanup_free_ char *maps = NULL;
	size_t len;
	return read_file_at(AT_FDCWD, "/proc/self/maps", 1 << 22, &maps, &len) == 0 && strstr(maps, "[vdso]");
}

static bool probe_file(const char *p)
{
	return access(p, F_OK) == 0;
}

const struct kfeature *kernel_features(size_t *ret_n)
{
	static struct kfeature f[] = {
		{ "ptrace seize and remote syscalls", "freezing and driving processes", true, false },
		{ "CAP_SYS_ADMIN", "suspending seccomp while restoring, reading filters", true, false },
		{ "CAP_CHECKPOINT_RESTORE", "restoring pids (clone3 set_tid) and the exe link", true, false },
		{ "clone3 with set_tid", "restoring processes and threads with their pids", true, false },
		{ "PAGEMAP_SCAN", "finding the pages that exist (Linux 6.7+)", true, false },
		{ "PR_SET_MM_MAP", "restoring brk, stack, arg/env, auxv, exe (CONFIG_CHECKPOINT_RESTORE)", true, false },
		{ "pidfd_open", "tracking processes safely", true, false },
		{ "process_vm_readv", "copying memory out of a process", true, false },
		{ "vdso", "finding a syscall instruction in a process", true, false },
		{ "/dev/userfaultfd", "lazy restore and dirty tracking (future)", false, false },
	};
	f[0].present = probe_file("/proc/self/status");
	f[1].present = have_cap(CAP_SYS_ADMIN);
	f[2].present = have_cap(CAP_CHECKPOINT_RESTORE) || have_cap(CAP_SYS_ADMIN);
	f[3].present = syscall(SYS_clone3, NULL, 0) < 0 && errno == EINVAL; /* exists, args refused */
	f[4].present = probe_pagemap_scan();
	f[5].present = probe_mm_map();
	f[6].present = probe_pidfd();
	f[7].present = probe_vm_readv();
	f[8].present = probe_vdso();
	f[9].present = probe_file("/dev/userfaultfd");
	*ret_n = sizeof(f) / sizeof(f[0]);
	return f;
}

int kernel_need_privileges(const char *what)
{
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif
	bool ptrace_ok = have_cap(CAP_SYS_PTRACE);
	bool cr_ok = have_cap(CAP_SYS_ADMIN) || have_cap(CAP_CHECKPOINT_RESTORE);
	if (ptrace_ok && cr_ok)
		return 0;
	return log_error_errno(-EPERM, "stasis %s needs root (it runs as uid %u without %s%s%s): run it as root, "
			       "e.g. with sudo", what, (unsigned)geteuid(), ptrace_ok ? "" : "CAP_SYS_PTRACE",
			       ptrace_ok || cr_ok ? "" : " and ",
			       cr_ok ? "" : "CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
}
