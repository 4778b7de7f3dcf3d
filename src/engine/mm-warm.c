/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Before the freeze of a dump with --parent (mm.h): the pages written
 * since the parent image are read once and forgotten, and about as much
 * free memory is touched and given back. Nothing depends on what this
 * finds; it only makes the same work cheaper while the tree is frozen,
 * on machines where the first access to a page costs several us. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/mm.h"
#include "engine/proc.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_IOV 1024
#define SCAN_VEC 512
/* Read at most this much ahead, and warm at most WARM_FREE_MAX of free
 * memory (a passing allocation): beyond, the copy dominates anyway. */
#define WARM_MAX (256ull << 20)
#define WARM_FREE_MAX (64ull << 20)

/* The written pages of one mapping, read into buf and forgotten. */
static void warm_vma(pid_t pid, int pagemap_fd, const struct vma *v, uint8_t *buf, size_t size, uint64_t *budget)
{
	struct page_region vec[SCAN_VEC];
	struct iovec remote[MAX_IOV], local = { buf, 0 };
	size_t nr = 0;
	uint64_t start = v->start;
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_CHECK_WPASYNC, .start = start,
					 .end = v->end, .vec = (uint64_t)vec, .vec_len = SCAN_VEC,
					 .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
					 .return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT };
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		for (long i = 0; i < n && *budget; i++) {
			uint64_t p = vec[i].start;
			while (p < vec[i].end && *budget) {
				uint64_t len = vec[i].end - p;
				len = len < size - local.iov_len ? len : size - local.iov_len;
				len = len < *budget ? len : *budget;
				remote[nr++] = (struct iovec){ (void *)p, len };
				local.iov_len += len, p += len, *budget -= len;
				if (nr == MAX_IOV || local.iov_len == size || !*budget) {
					(void)process_vm_readv(pid, &local, 1, remote, nr, 0);
					nr = 0, local.iov_len = 0;
				}
			}
		}
		if (n < SCAN_VEC || a.walk_end >= v->end || !*budget)
			break;
		start = a.walk_end;
	}
	if (nr)
		(void)process_vm_readv(pid, &local, 1, remote, nr, 0);
}

/* The image file's pages come from the kernel's free memory, which the
 * hypervisor takes back after a few idle seconds: the first touch of such
 * a page is slow, of one freed just before fast (DESIGN.md §7). So about
 * as much memory as the frozen dump will write is touched and freed now. */
static void warm_free_memory(uint64_t len)
{
	len = len < WARM_FREE_MAX ? len + (1u << 20) : WARM_FREE_MAX; /* and the image's other files */
	len = (len + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	/* The kernel zeroes each page: that is the touch, without our faults. */
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0)
		for (uint64_t o = 0; o < len; o += PAGE_SIZE)
			((volatile uint8_t *)p)[o] = 1;
	munmap(p, len);
}

void mm_pages_warm(pid_t pid)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int pagemap_fd = -1;
	struct vma *v = NULL;
	size_t len, n = 0, size;
	uint64_t budget = WARM_MAX, t0 = now_ns();
	uint8_t *copy = mm_pages_spare(&size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (!copy || proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_smaps(buf, len, &v, &n) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; pagemap_fd >= 0 && i < n && budget; i++)
		if (!v[i].ino && !v[i].shared && (v[i].prot & PROT_READ))
			warm_vma(pid, pagemap_fd, &v[i], copy, size, &budget);
	vmas_free(v, n);
	warm_free_memory(WARM_MAX - budget);
	log_debug("pid %d: %" PRIu64 " KiB written since the parent image read ahead of the freeze in %.1f ms", pid,
		  (uint64_t)((WARM_MAX - budget) >> 10), (double)(now_ns() - t0) / 1e6);
}
