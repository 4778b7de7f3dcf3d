/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guard regions (madvise MADV_GUARD_INSTALL, Linux 6.13+): pages of a
 * mapping that fault with SIGSEGV on any access, kept as page-table
 * markers rather than as mappings of their own, so /proc/PID/maps does
 * not show them. PAGEMAP_SCAN reports them (PAGE_IS_GUARD, 6.15+); the
 * dump lists them in mm-PID.json ("guards") and the restore installs
 * them again once the pages are in. A kernel whose PAGEMAP_SCAN does not
 * know the bit refuses the scan (EINVAL): it has no guards to see. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/mm.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"

#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8)
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define MAX_GUARDS 65536
#define SCAN_VEC 64

bool mm_guards_known(void)
{
	static int known = -1;
	if (known < 0) {
		static char page[4096] __attribute__((aligned(4096)));
		struct page_region vec[1];
		_cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		struct pm_scan_arg a = { .size = sizeof(a), .start = (uint64_t)page, .end = (uint64_t)page + 4096,
					 .vec = (uint64_t)vec, .vec_len = 1, .category_anyof_mask = PAGE_IS_GUARD,
					 .return_mask = PAGE_IS_GUARD };
		known = fd >= 0 && ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
	}
	return known;
}

static int add_guard(struct mm_rec *m, uint64_t start, uint64_t end)
{
	if (m->nguards && m->guards[m->nguards - 1].end == start) {
		m->guards[m->nguards - 1].end = end;
		return 0;
	}
	if (m->nguards == MAX_GUARDS)
		return -E2BIG;
	struct mm_guard *g = realloc(m->guards, (m->nguards + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	m->guards = g;
	g[m->nguards++] = (struct mm_guard){ start, end };
	return 0;
}

/* The guard pages of [start, end); a full vector means more may follow. */
static int scan(int fd, uint64_t start, uint64_t end, struct mm_rec *m)
{
	struct page_region vec[SCAN_VEC];
	while (start < end) {
		struct pm_scan_arg a = { .size = sizeof(a), .start = start, .end = end, .vec = (uint64_t)vec,
					 .vec_len = SCAN_VEC, .category_anyof_mask = PAGE_IS_GUARD,
					 .return_mask = PAGE_IS_GUARD };
		long n = ioctl(fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return errno == EINVAL ? 1 : -errno; /* 1: the kernel knows no guards */
		for (long i = 0; i < n; i++) {
			int r = add_guard(m, vec[i].start, vec[i].end);
			if (r < 0)
				return r;
		}
		if (n < SCAN_VEC)
			break;
		start = vec[n - 1].end;
	}
	return 0;
}

int mm_guards_collect(int procfd, pid_t pid, struct mm_rec *m)
{
	if (!mm_guards_known())
		return 0;
	_cleanup_close_ int fd = openat(procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot open pagemap: %m", pid);
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_ANON && v->kind != VMA_FILE && v->kind != VMA_SHMEM)
			continue;
		int r = scan(fd, v->start, v->end, m);
		if (r == 1)
			return 0;
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot find the guard pages of %#llx: %m", pid,
					       (unsigned long long)v->start);
	}
	return 0;
}

void mm_guards_to_json(const struct mm_rec *m, struct json_builder *b)
{
	if (!m->nguards)
		return;
	json_t *a = jb_array(b, "guards");
	for (size_t i = 0; a && i < m->nguards; i++) {
		struct json_builder o;
		jb_begin(&o);
		jb_u64(&o, "start", m->guards[i].start);
		jb_u64(&o, "end", m->guards[i].end);
		jb_append_obj(b, a, &o);
	}
}

/* Each range inside one mapping that can hold guards, in order. */
static bool guard_valid(const struct mm_rec *m, size_t i)
{
	const struct mm_guard *g = &m->guards[i];
	if (g->start >= g->end || g->start % PAGE_SIZE || g->end % PAGE_SIZE || (i && g->start < m->guards[i - 1].end))
		return false;
	for (size_t k = 0; k < m->nvmas; k++) {
		const struct vma_rec *v = &m->vmas[k];
		if (g->start >= v->start && g->end <= v->end)
			return v->kind == VMA_ANON || v->kind == VMA_FILE || v->kind == VMA_SHMEM;
	}
	return false;
}

int mm_guards_from_json(const json_t *j, struct mm_rec *m)
{
	json_t *a = json_object_get(j, "guards");
	if (!a)
		return 0; /* absent before version 4: none */
	if (!json_is_array(a) || json_array_size(a) > MAX_GUARDS)
		return -EBADMSG;
	m->guards = calloc(json_array_size(a) + 1, sizeof(*m->guards));
	if (!m->guards)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *o = json_array_get(a, i);
		int r;
		if ((r = json_get_u64(o, "start", &m->guards[i].start)) < 0 ||
		    (r = json_get_u64(o, "end", &m->guards[i].end)) < 0)
			return r;
		m->nguards = i + 1;
		if (!guard_valid(m, i))
			return -EBADMSG;
	}
	return 0;
}

int mm_guards_restore(struct remote *r, pid_t tid, const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nguards; i++) {
		const struct mm_guard *g = &m->guards[i];
		long ret = remote_syscall(r, tid, SYS_madvise, g->start, g->end - g->start, MADV_GUARD_INSTALL);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot install guard pages at %#llx again: %m", r->pid,
					       (unsigned long long)g->start);
	}
	return 0;
}
