/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Before the freeze of a dump with --parent (mm.h): the pages written
 * since the parent image are read once and forgotten, and about as much
 * free memory is touched and given back. It only makes the same work
 * cheaper while the tree is frozen, on machines where the first access
 * to a page costs several us; and it remembers which of those pages
 * were the process's own, so that the frozen copy need not ask the
 * kernel again (mm_warm_own(), which says why that is safe). */
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

/* What the warm-up saw: the runs of written pages that were pid's own
 * (mm_cow_split), sorted by address. */
struct mm_warm {
	struct mm_warm_run {
		uint64_t start, end;
	} *own;
	size_t n, cap;
	uint64_t bytes; /* read ahead */
};

struct warm {
	pid_t pid;
	struct mm_warm *seen;
	int mem_fd; /* pages mapped by others too: read without unsharing them */
	uint8_t *buf, *bufs[2]; /* buf: bufs[0] or [1], turn about */
	size_t size, used;
	struct iovec remote[MAX_IOV];
	size_t nr;
	uint64_t budget;
};

static void warm_flush(struct warm *w)
{
	struct iovec local = { w->buf, w->used };
	if (w->nr)
		(void)process_vm_readv(w->pid, &local, 1, w->remote, w->nr, 0);
	w->nr = 0, w->used = 0;
	if (w->bufs[1])
		w->buf = w->buf == w->bufs[0] ? w->bufs[1] : w->bufs[0];
}

/* As the frozen copy does (mm-pages.c page_run): process_vm_readv only
 * for the process's own pages, since pinning a shared one unshares it. */
/* Records [addr, addr+len) as pid's own, or extends the last run. */
static int seen_own(struct mm_warm *s, uint64_t addr, uint64_t len)
{
	if (s->n && s->own[s->n - 1].end == addr) {
		s->own[s->n - 1].end += len;
		return 0;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		struct mm_warm_run *v = realloc(s->own, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->own = v, s->cap = nc;
	}
	s->own[s->n++] = (struct mm_warm_run){ addr, addr + len };
	return 0;
}

static int warm_run(void *arg, uint64_t addr, uint64_t len, enum mm_page_class k)
{
	struct warm *w = arg;
	if (k == MM_PAGE_OWN && w->seen && seen_own(w->seen, addr, len) < 0) {
		mm_warm_free(w->seen); /* only an aid: without it, the frozen copy asks the kernel */
		w->seen = NULL;
	}
	while (len && w->budget) {
		size_t room = k == MM_PAGE_OWN ? w->size - w->used : w->size;
		size_t chunk = len < room ? len : room;
		chunk = chunk < w->budget ? chunk : w->budget;
		if (k != MM_PAGE_OWN)
			(void)pread(w->mem_fd, w->buf, chunk, (off_t)addr);
		else
			w->remote[w->nr++] = (struct iovec){ (void *)addr, chunk }, w->used += chunk;
		if (w->nr == MAX_IOV || w->used == w->size)
			warm_flush(w);
		addr += chunk, len -= chunk, w->budget -= chunk;
	}
	return 0;
}

/* The written pages of one mapping, read into w->buf and forgotten. */
static void warm_vma(struct warm *w, int pagemap_fd, const struct vma *v)
{
	struct page_region vec[SCAN_VEC];
	uint64_t start = v->start;
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_CHECK_WPASYNC, .start = start,
					 .end = v->end, .vec = (uint64_t)vec, .vec_len = SCAN_VEC,
					 .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
					 .return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT };
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		for (long i = 0; i < n && w->budget; i++)
			if (mm_cow_split(pagemap_fd, -1, vec[i].start, vec[i].end - vec[i].start, warm_run, w) < 0)
				return;
		if (n < SCAN_VEC || a.walk_end >= v->end || !w->budget)
			return;
		start = a.walk_end;
	}
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

void mm_warm_free(struct mm_warm *s)
{
	if (s)
		free(s->own);
	free(s);
}

uint64_t mm_warm_bytes(const struct mm_warm *s)
{
	return s ? s->bytes : 0;
}

bool mm_warm_own(const struct mm_warm *s, size_t *at, uint64_t addr, uint64_t len)
{
	if (!s)
		return false;
	while (*at < s->n && s->own[*at].end <= addr)
		(*at)++;
	return *at < s->n && s->own[*at].start <= addr && addr + len <= s->own[*at].end;
}

struct mm_warm *mm_pages_warm(pid_t pid)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int pagemap_fd = -1, mem_fd = -1;
	struct warm w = { .pid = pid, .budget = WARM_MAX, .seen = calloc(1, sizeof(struct mm_warm)) };
	struct vma *v = NULL;
	size_t len, n = 0;
	uint64_t t0 = now_ns();
	char path[64];
	w.buf = w.bufs[0] = mm_pages_spare(0, &w.size);
	w.bufs[1] = mm_pages_spare(1, &w.size);
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (!w.buf || proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_smaps(buf, len, &v, &n) < 0) {
		mm_warm_free(w.seen);
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	w.mem_fd = mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; pagemap_fd >= 0 && mem_fd >= 0 && i < n && w.budget; i++)
		if (!v[i].ino && !v[i].shared && (v[i].prot & PROT_READ))
			warm_vma(&w, pagemap_fd, &v[i]);
	warm_flush(&w);
	vmas_free(v, n);
	if (w.seen)
		w.seen->bytes = WARM_MAX - w.budget;
	warm_free_memory(WARM_MAX - w.budget);
	log_debug("pid %d: %" PRIu64 " KiB written since the parent image read ahead of the freeze in %.1f ms", pid,
		  (uint64_t)((WARM_MAX - w.budget) >> 10), (double)(now_ns() - t0) / 1e6);
	return w.seen;
}
