/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Copy-on-write sharing between a process and its parent. A forked
 * worker that only reads what its parent filled shares those pages with
 * it: the same physical page at the same address. The dump names such a
 * page once, in the parent's page file; the child's pagerefs-PID.img only
 * says "the parent's page at this address". On restore the parent's
 * memory is made before it forks the child (restore-tree.c), so the child
 * inherits those mappings copy-on-write, as it did originally, and only
 * its own pages are written: the tree's memory is shared again. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "engine/mm.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define SPLIT_CHUNK 4096 /* pagemap entries read at a time: 16 MiB of memory */
#define COPY_CHUNK (4u << 20)

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static const struct vma_rec *find_vma(const struct mm_rec *m, uint64_t addr)
{
	size_t lo = 0, hi = m->nvmas;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->vmas[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nvmas && m->vmas[lo].start <= addr ? &m->vmas[lo] : NULL;
}

bool mm_cow_vma_ok(const struct mm_rec *parent, const struct vma_rec *v)
{
	/* Not inherited, or inherited empty, at fork. */
	const uint32_t not_forked = VMF_DONTCOPY | VMF_WIPEONFORK;
	if (!parent || v->kind != VMA_ANON || v->shared || (v->vmflags & not_forked))
		return false;
	const struct vma_rec *p = find_vma(parent, v->start);
	/* Equal flags: what the child keeps of the parent's mapping must be
	 * what the child had, madvise flags included. */
	return p && p->start == v->start && p->end == v->end && p->kind == VMA_ANON && !p->shared &&
	       p->vmflags == v->vmflags;
}

/* The same physical page, mapped by both: present (not swapped), a real
 * frame number (zero when we may not see them), not exclusive to the
 * child. Such a page has not been written by either since the fork. */
static bool same_page(uint64_t self, uint64_t parent)
{
	uint64_t pfn = self & PM_PFN_MASK;
	return (self & PM_PRESENT) && (parent & PM_PRESENT) && !(self & (PM_EXCLUSIVE | PM_SWAPPED)) && pfn &&
	       pfn == (parent & PM_PFN_MASK);
}

static enum mm_page_class classify_page(uint64_t self, uint64_t parent, bool with_parent)
{
	if (with_parent && same_page(self, parent))
		return MM_PAGE_PARENTS;
	/* Swapped pages are read in (and made exclusive) by either read. */
	return (self & PM_PRESENT) && !(self & PM_EXCLUSIVE) ? MM_PAGE_SHARED : MM_PAGE_OWN;
}

int mm_cow_split(int self_fd, int parent_fd, uint64_t addr, uint64_t len, mm_cow_fn fn, void *arg)
{
	_cleanup_free_ uint64_t *se = malloc(SPLIT_CHUNK * sizeof(*se));
	_cleanup_free_ uint64_t *pe = malloc(SPLIT_CHUNK * sizeof(*pe));
	uint64_t run = addr, end = addr + len;
	enum mm_page_class run_class = MM_PAGE_OWN;
	int r;
	if (!se || !pe)
		return -ENOMEM;
	while (addr < end) {
		size_t n = (end - addr) / PAGE_SIZE < SPLIT_CHUNK ? (end - addr) / PAGE_SIZE : SPLIT_CHUNK;
		off_t off = (off_t)(addr / PAGE_SIZE * sizeof(uint64_t));
		if ((r = pread_exact(self_fd, se, n * sizeof(*se), off)) < 0 ||
		    (parent_fd >= 0 && (r = pread_exact(parent_fd, pe, n * sizeof(*pe), off)) < 0))
			return r;
		for (size_t i = 0; i < n; i++, addr += PAGE_SIZE) {
			enum mm_page_class k = classify_page(se[i], pe[i], parent_fd >= 0);
			if (k != run_class && addr != run) {
				if ((r = fn(arg, run, addr - run, run_class)) < 0)
					return r;
				run = addr;
			}
			run_class = k;
		}
	}
	return run < end ? fn(arg, run, end - run, run_class) : 0;
}

/* Every run lies in mappings that the child may share with its parent;
 * runs are sorted (pagemap_decode), so one walk checks them all. */
static int check_refs(const struct mm_rec *m, const struct mm_rec *parent)
{
	for (size_t i = 0; i < m->nrefs; i++) {
		uint64_t a = m->refs[i].vaddr, end = a + m->refs[i].nr_pages * PAGE_SIZE;
		while (a < end) {
			const struct vma_rec *v = find_vma(m, a);
			if (!v || !mm_cow_vma_ok(parent, v))
				return -EBADMSG;
			a = v->end;
		}
	}
	return 0;
}

int mm_load_refs(struct image *img, pid_t pid, struct mm_rec *m, const struct mm_rec *parent, bool inherit)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *buf = NULL;
	size_t len;
	if (!m->parent_pages)
		return 0;
	image_name_pagerefs(name, pid);
	if (!parent)
		return log_error_errno(-EBADMSG, "image file 'mm-%d.json' names pages shared with a parent that is "
				       "not in the image", pid);
	int r = image_get(img, name, (size_t)PAGEMAP_MAX_ENTRIES * sizeof(struct pagemap_entry) + 64, &buf, &len);
	if (r < 0)
		return r;
	free(m->refs);
	m->refs = NULL;
	r = pagemap_decode(buf, len, m->parent_pages * PAGE_SIZE, &m->refs, &m->nrefs);
	if (r >= 0)
		r = check_refs(m, parent);
	if (r < 0)
		return log_error_errno(r, "image file '%s' is damaged: bad index of pages shared with the parent", name);
	for (size_t i = 0; inherit && i < m->nrefs; i++) {
		uint64_t a = m->refs[i].vaddr, end = a + m->refs[i].nr_pages * PAGE_SIZE;
		for (struct vma_rec *v; a < end; a = v->end) {
			v = (struct vma_rec *)find_vma(m, a);
			v->keep = true;
		}
	}
	return 0;
}

/* Drops [a, b) of the process's memory; a locked mapping needs the
 * _LOCKED variant. */
static int drop(struct remote *r, pid_t tid, const struct vma_rec *v, uint64_t a, uint64_t b)
{
	long ret = remote_syscall(r, tid, SYS_madvise, a, b - a, MADV_DONTNEED);
	if (ret == -EINVAL && (v->vmflags & VMF_LOCKED))
		ret = remote_syscall(r, tid, SYS_madvise, a, b - a, MADV_DONTNEED_LOCKED);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot drop the pages it does not share with its parent at "
				       "%" PRIx64 ": %m", r->pid, a);
	return 0;
}

/* Drops [a, b) but the shared runs in it; *ref is the first run that
 * may reach past a, moved on as the walk goes up. */
static int drop_unshared(struct remote *r, pid_t tid, const struct mm_rec *m, const struct vma_rec *v, size_t *ref,
			 uint64_t a, uint64_t b)
{
	while (a < b) {
		while (*ref < m->nrefs && m->refs[*ref].vaddr + m->refs[*ref].nr_pages * PAGE_SIZE <= a)
			(*ref)++;
		uint64_t rs = *ref < m->nrefs ? m->refs[*ref].vaddr : b;
		uint64_t re = *ref < m->nrefs ? rs + m->refs[*ref].nr_pages * PAGE_SIZE : b;
		if (rs > a) {
			int e = drop(r, tid, v, a, rs < b ? rs : b);
			if (e < 0)
				return e;
		}
		a = re; /* past the shared run (or b: none left) */
	}
	return 0;
}

/* The pages the kept mapping has now (the parent's), less those shared:
 * what the kernel says is there, so holes cost nothing. */
static int drop_vma(struct remote *r, pid_t tid, int pagemap_fd, const struct mm_rec *m, const struct vma_rec *v,
		    size_t *ref)
{
	struct page_region vec[256];
	uint64_t start = v->start;
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .start = start, .end = v->end, .vec = (uint64_t)vec,
					 .vec_len = 256, .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
					 .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			int e = drop_unshared(r, tid, m, v, ref, vec[i].start, vec[i].end);
			if (e < 0)
				return e;
		}
		if (n < 256 || a.walk_end >= v->end)
			return 0;
		start = a.walk_end;
	}
}

int mm_restore_kept(struct remote *r, pid_t tid, int procfd, const struct mm_rec *m)
{
	_cleanup_close_ int fd = -1;
	size_t ref = 0;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!v->keep)
			continue;
		if (fd < 0 && (fd = openat(procfd, "pagemap", O_RDONLY | O_CLOEXEC)) < 0)
			return log_error_errno(-errno, "pid %d: cannot open its pagemap: %m", r->pid);
		int e = drop_vma(r, tid, fd, m, v, &ref);
		if (e < 0)
			return log_error_errno(e, "pid %d: cannot look at the memory it inherited at %" PRIx64 ": %m",
					       r->pid, v->start);
	}
	return 0;
}

int mm_copy_refs(struct remote *r, const struct mm_rec *m, int parent_mem_fd)
{
	_cleanup_free_ void *buf = NULL;
	for (size_t i = 0; i < m->nrefs; i++) {
		uint64_t a = m->refs[i].vaddr, len = m->refs[i].nr_pages * PAGE_SIZE;
		if (find_vma(m, a)->keep)
			continue;
		if (!buf && !(buf = malloc(COPY_CHUNK)))
			return -ENOMEM;
		for (uint64_t n; len; a += n, len -= n) {
			n = len < COPY_CHUNK ? len : COPY_CHUNK;
			int e = pread_exact(parent_mem_fd, buf, n, (off_t)a);
			if (e >= 0)
				e = remote_write(r, a, buf, n);
			if (e < 0)
				return log_error_errno(e, "pid %d: cannot copy the pages it shared with its parent at %"
						       PRIx64 ": %m", r->pid, a);
		}
	}
	return 0;
}
