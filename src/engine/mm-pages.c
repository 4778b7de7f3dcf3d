/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Page contents: which pages exist (PAGEMAP_SCAN), copying them out of
 * the process (process_vm_readv, large batches) and back in on restore
 * (the process itself preadv()s the page file: one copy, in the kernel,
 * a few remote syscalls for the whole address space). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <xxhash.h>

#include "engine/fdpass.h"
#include "engine/mm.h"
#include "engine/proc.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

#define COPY_BUF (8u << 20)
#define INLINE_BUF (1u << 20)
#define POPULATE_MIN (64u << 10)
#define MAX_IOV 1024
#define SCAN_VEC 512

/* Pages are copied out by this thread (process_vm_readv, then checksum)
 * into one buffer while a writer thread writes the other to the image:
 * reading and writing overlap on the two cores. */
struct page_writer {
	pid_t pid;
	int mem_fd;
	struct image_stream *out;
	uint8_t *bufs[2];
	size_t ready[2]; /* bytes of each buffer populated (fill_ready) */
	size_t lens[2];
	bool full[2];
	int cur;       /* buffer being filled */
	size_t used;   /* bytes queued in bufs[cur] */
	uint64_t off;  /* page-file offset of bufs[cur][0] */
	struct iovec remote[MAX_IOV];
	size_t nremote;
	pthread_t thread;
	bool thread_started, done;
	bool last;     /* the next hand-over is the last one */
	int werr;      /* first error of the writer thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pagemap_entry *pm;
	size_t npm, cap;
	uint64_t pages;
	/* Pages that are the parent's own (mm-cow.c): runs, no data. */
	struct pagemap_entry *refs;
	size_t nrefs, refcap;
	uint64_t ref_pages;
	/* Pages unchanged since the parent image (predump.h): runs, no data. */
	struct pagemap_entry *chain;
	size_t nchain, chaincap;
	uint64_t chain_pages;
	int parent_fd; /* the parent's pagemap, -1: no parent to share with */
	const struct mm_rec *parent;
	bool readable; /* the mapping being saved */
	const struct mm_warm *warm; /* what the warm-up saw (mm_warm_own) */
	size_t warm_at;
	/* Buffers' worth expected (the warm-up read them, into both buffers
	 * from their start): the writer thread from the first piece on. */
	bool big;
};

static void *writer_main(void *arg)
{
	struct page_writer *w = arg;
	for (int b = 0;; b ^= 1) {
		pthread_mutex_lock(&w->lock);
		while (!w->full[b] && !w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		bool stop = !w->full[b];
		pthread_mutex_unlock(&w->lock);
		if (stop)
			return NULL;
		int r = w->werr ? 0 : image_stream_write_hashed(w->out, w->bufs[b], w->lens[b]);
		pthread_mutex_lock(&w->lock);
		if (r < 0 && !w->werr)
			w->werr = r;
		w->full[b] = false;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Queues bufs[cur] for the writer thread and waits until the other
 * buffer is free to fill. */
static int queue(struct page_writer *w, size_t len)
{
	pthread_mutex_lock(&w->lock);
	w->lens[w->cur] = len;
	w->full[w->cur] = true;
	w->cur ^= 1;
	pthread_cond_broadcast(&w->cond);
	while (w->full[w->cur])
		pthread_cond_wait(&w->cond, &w->lock);
	int r = w->werr;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* How much of a buffer one copy fills. Until the writer thread starts,
 * pieces of INLINE_BUF, all in the same pages of bufs[0]: each page of a
 * buffer costs on its first touch, by the kernel's copy and again by our
 * checksum (~50 us a page on a busy machine here), so a process of a few
 * MiB copied through 8 MiB of fresh buffer took ~80 ms where 1 MiB pieces
 * take a few. With the thread, whole buffers, reused from then on. */
static size_t buf_limit(const struct page_writer *w)
{
	return w->thread_started || w->big ? COPY_BUF : INLINE_BUF;
}

/* Checksums bufs[cur] (len bytes) and has it written. Pieces are written
 * here until a buffer's worth is (a small process needs no thread to
 * start and wait for: ~0.5 ms, more on a busy machine); from then on,
 * but for the last piece, by the writer thread while the next is read. */
static int hand_over(struct page_writer *w, size_t len)
{
	int r = image_stream_hash(w->out, w->bufs[w->cur], len);
	if (r >= 0 && !w->thread_started && !w->last && (w->big || w->off + len >= COPY_BUF)) {
		r = -pthread_create(&w->thread, NULL, writer_main, w);
		w->thread_started = r == 0;
	}
	if (r >= 0)
		r = w->thread_started ? queue(w, len) : image_stream_write_hashed(w->out, w->bufs[w->cur], len);
	w->off += len;
	progress_add(len);
	return r;
}

/* A page fault costs ~14 us on these machines (DESIGN.md §7): the part of
 * the buffer about to be filled is populated in the kernel first, once
 * (the buffers are kept from one process to the next). Only what is
 * used: a small process copies a few pages, not megabytes of zeroes. */
static void fill_ready(struct page_writer *w, size_t len)
{
	size_t *ready = &w->ready[w->cur];
	/* Best effort: where it fails, the pages fault in as used. */
	if (*ready < len && madvise(w->bufs[w->cur] + *ready, len - *ready, MADV_POPULATE_WRITE) == 0)
		*ready = len;
}

static int writer_flush(struct page_writer *w)
{
	if (interrupt_pending())
		return -EINTR; /* every few MiB: a safe point to stop at */
	if (!w->nremote)
		return 0;
	struct iovec local = { w->bufs[w->cur], w->used };
	fill_ready(w, w->used);
	ssize_t n = process_vm_readv(w->pid, &local, 1, w->remote, w->nremote, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n != w->used)
		return -EIO;
	size_t len = w->used;
	w->used = 0;
	w->nremote = 0;
	return hand_over(w, len);
}

/* Waits for the writer to finish everything handed over and stops it. */
static int writer_finish(struct page_writer *w)
{
	if (!w->thread_started)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->thread_started = false;
	return w->werr;
}

/* Appends a run to v, or extends the last one it continues. */
static int add_run(struct pagemap_entry **v, size_t *n, size_t *cap, uint64_t addr, uint64_t npages, uint64_t off)
{
	if (*n && (*v)[*n - 1].vaddr + (*v)[*n - 1].nr_pages * PAGE_SIZE == addr) {
		(*v)[*n - 1].nr_pages += npages;
		return 0;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct pagemap_entry *e = realloc(*v, nc * sizeof(*e));
		if (!e)
			return -ENOMEM;
		*v = e;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct pagemap_entry){ addr, npages, off };
	return 0;
}

static int add_entry(struct page_writer *w, uint64_t addr, uint64_t npages, uint64_t off)
{
	return add_run(&w->pm, &w->npm, &w->cap, addr, npages, off);
}

/* Copies [addr, addr+len) into the page file, batched. Unreadable
 * mappings (PROT_NONE with contents) go through /proc/pid/mem, which
 * ignores protections. */
static int copy_range(struct page_writer *w, uint64_t addr, uint64_t len, bool readable)
{
	int r = add_entry(w, addr, len / PAGE_SIZE, w->off + w->used);
	if (r < 0)
		return r;
	w->pages += len / PAGE_SIZE;
	while (len) {
		if (!readable) {
			size_t chunk = len < buf_limit(w) ? len : buf_limit(w);
			if ((r = writer_flush(w)) < 0)
				return r;
			fill_ready(w, chunk);
			if ((r = pread_exact(w->mem_fd, w->bufs[w->cur], chunk, (off_t)addr)) < 0 ||
			    (r = hand_over(w, chunk)) < 0)
				return r;
			addr += chunk, len -= chunk;
			continue;
		}
		size_t room = buf_limit(w) - w->used;
		size_t chunk = len < room ? len : room;
		w->remote[w->nremote++] = (struct iovec){ (void *)addr, chunk };
		w->used += chunk;
		addr += chunk, len -= chunk;
		if (w->used == buf_limit(w) || w->nremote == MAX_IOV)
			if ((r = writer_flush(w)) < 0)
				return r;
	}
	return 0;
}

static void scan_categories(const struct vma_rec *v, struct pm_scan_arg *a)
{
	a->category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	a->return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	if (v->kind == VMA_ANON) {
		/* The shared zero page reads as zero after restore anyway. */
		a->category_inverted = a->category_mask = PAGE_IS_PFNZERO;
	} else if (v->kind == VMA_FILE || v->kind == VMA_SHMEM) {
		/* Only copy-on-write copies; the rest comes from the file. */
		a->category_inverted = a->category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO;
	}
	/* A guard page (mm-guard.c) is a marker the scan calls swapped. */
	if (mm_guards_known()) {
		a->category_inverted |= MM_PAGE_IS_GUARD;
		a->category_mask |= MM_PAGE_IS_GUARD;
	}
}

/* A run of one class: the parent's pages are only named; pages mapped
 * by other processes too are read through /proc/PID/mem, because
 * process_vm_readv pins them, and the kernel gives a process its own
 * copy of a shared anonymous page it pins: the dump would break the
 * original's copy-on-write sharing (and its parent's page would no
 * longer be the child's when the child's turn comes). */
static int page_run(void *arg, uint64_t addr, uint64_t len, enum mm_page_class k)
{
	struct page_writer *w = arg;
	if (k != MM_PAGE_PARENTS)
		return copy_range(w, addr, len, w->readable && k == MM_PAGE_OWN);
	int r = add_run(&w->refs, &w->nrefs, &w->refcap, addr, len / PAGE_SIZE, w->ref_pages * PAGE_SIZE);
	if (r >= 0)
		w->ref_pages += len / PAGE_SIZE;
	return r;
}

static int dump_vma_pages(struct page_writer *w, int pagemap_fd, const struct vma_rec *v)
{
	struct page_region vec[SCAN_VEC];
	uint64_t start = v->start;
	int parent_fd = mm_cow_vma_ok(w->parent, v) ? w->parent_fd : -1;

	w->readable = v->prot & PROT_READ;
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .start = start, .end = v->end,
					 .vec = (uint64_t)vec, .vec_len = SCAN_VEC };
		scan_categories(v, &a);
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			int r = mm_cow_split(pagemap_fd, parent_fd, vec[i].start, vec[i].end - vec[i].start, page_run, w);
			if (r < 0)
				return r;
		}
		/* A walk is complete whenever the vector was not filled; walk_end
		 * is only trustworthy when it was (DESIGN.md §7). */
		if (n < SCAN_VEC || a.walk_end >= v->end)
			return 0;
		start = a.walk_end;
	}
}

/* Pages written since the parent image: whose they are, from the
 * warm-up where it knows, else from the kernel (mm_cow_split). */
static int written_run(struct page_writer *w, int pagemap_fd, uint64_t addr, uint64_t len)
{
	if (mm_warm_own(w->warm, &w->warm_at, addr, len))
		return page_run(w, addr, len, MM_PAGE_OWN);
	return mm_cow_split(pagemap_fd, -1, addr, len, page_run, w);
}

/* A mapping write-tracked since the parent image (predump.h): pages
 * written since are copied, the other present ones are the parent's.
 * 0: the mapping is not tracked (new, moved, or tracking gone). */
static int dump_vma_written(struct page_writer *w, int pagemap_fd, const struct vma_rec *v)
{
	struct page_region vec[SCAN_VEC];
	uint64_t start = v->start;
	w->readable = v->prot & PROT_READ;
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_CHECK_WPASYNC, .start = start, .end = v->end,
					 .vec = (uint64_t)vec, .vec_len = SCAN_VEC };
		scan_categories(v, &a);
		a.return_mask |= PAGE_IS_WRITTEN;
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0 && errno == EPERM && start == v->start)
			return 0;
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			uint64_t len = vec[i].end - vec[i].start;
			int r = vec[i].categories & PAGE_IS_WRITTEN
					? written_run(w, pagemap_fd, vec[i].start, len)
					: add_run(&w->chain, &w->nchain, &w->chaincap, vec[i].start, len / PAGE_SIZE,
					    w->chain_pages * PAGE_SIZE);
			if (r < 0)
				return r;
			if (!(vec[i].categories & PAGE_IS_WRITTEN))
				w->chain_pages += len / PAGE_SIZE;
		}
		if (n < SCAN_VEC || a.walk_end >= v->end)
			return 1;
		start = a.walk_end;
	}
}

static int dump_vma(struct page_writer *w, int pagemap_fd, const struct mm_rec *m, const struct vma_rec *v)
{
	int r = m->tracked && v->kind == VMA_ANON && !v->shared ? dump_vma_written(w, pagemap_fd, v) : 0;
	if (r == 0 && m->tracked)
		log_info("pid %d: %#" PRIx64 "-%#" PRIx64 " (%s) is not write-tracked: saved in full", w->pid,
			  v->start, v->end, vma_kind_name(v->kind));
	return r != 0 ? r : dump_vma_pages(w, pagemap_fd, v);
}

static bool vma_has_pages(const struct vma_rec *v)
{
	return v->kind == VMA_ANON || ((v->kind == VMA_FILE || v->kind == VMA_SHMEM) && !v->shared);
}

static int hash_vdso(struct remote *r, struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_VDSO)
			continue;
		size_t len = v->end - v->start;
		_cleanup_free_ void *buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		int e = remote_read(r, v->start, buf, len);
		if (e < 0)
			return e;
		m->vdso_hash = XXH3_64bits(buf, len);
	}
	return 0;
}

/* The copy buffers of the last dump, kept for the next process of the
 * tree: populating 16 MiB again for each process costs more than a small
 * process's whole copy. Dumps run one after another in one thread.
 * spare_ready: how much of each is populated. */
static void *spare_bufs[2];
static size_t spare_ready[2];

/* Copy buffer i, ready for need bytes: a spare one or a new one. On
 * these machines a page's first access from user space costs several us
 * even after MADV_POPULATE_WRITE (measured: 4 MiB populated in 1 ms, then
 * hashed in 7.7 ms the first time, 0.25 ms the next); touch: write a byte
 * a page ourselves, which mm_pages_prepare() does before the freeze. */
static void *take_buf(int i, size_t need, bool touch)
{
	uint8_t *b = spare_bufs[i];
	spare_bufs[i] = NULL;
	if (!b) {
		b = mmap(NULL, COPY_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			return NULL;
		spare_ready[i] = 0;
	}
	if (spare_ready[i] >= need)
		return b;
	/* Best effort: where it fails, the pages fault in as used. Then
	 * the touch, without faults: a fault costs ~14 us here. */
	if (madvise(b + spare_ready[i], need - spare_ready[i], MADV_POPULATE_WRITE) < 0 && !touch)
		return b;
	for (size_t o = spare_ready[i]; touch && o < need; o += PAGE_SIZE)
		((volatile uint8_t *)b)[o] = 0;
	spare_ready[i] = need;
	return b;
}

int mm_pages_prepare(pid_t pid)
{
	_cleanup_free_ char *buf = NULL;
	char path[64], line[256];
	size_t len, pos = 0;
	unsigned long long kb = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (proc_read(AT_FDCWD, path, &buf, &len) < 0)
		return 0; /* the freeze that follows says why */
	while (proc_next_line(buf, len, &pos, line, sizeof(line)) && sscanf(line, "RssAnon: %llu kB", &kb) != 1)
		;
	/* Less than a buffer's worth goes through the first 1 MiB piece of
	 * buffer 0 without the writer thread (populated as used): making
	 * more ready would only lengthen a small dump. */
	if (kb * 1024 < COPY_BUF)
		return 0;
	size_t need = COPY_BUF;
	for (int i = 0; i < 2; i++)
		if (!(spare_bufs[i] = take_buf(i, need, true)))
			return -errno;
	return 0;
}

void *mm_pages_spare(int i, size_t *ret_size)
{
	*ret_size = COPY_BUF;
	return spare_bufs[i];
}

static int writer_start(struct page_writer *w)
{
	for (int i = 0; i < 2; i++) {
		if (!(w->bufs[i] = take_buf(i, 0, false)))
			return -errno;
		w->ready[i] = spare_ready[i];
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return 0;
}

static void writer_free(struct page_writer *w)
{
	writer_finish(w);
	for (int i = 0; i < 2; i++) {
		if (w->bufs[i] && !spare_bufs[i]) {
			spare_bufs[i] = w->bufs[i];
			spare_ready[i] = w->ready[i];
		} else if (w->bufs[i])
			munmap(w->bufs[i], COPY_BUF);
	}
	free(w->pm);
	free(w->refs);
	free(w->chain);
	if (w->parent_fd >= 0)
		close(w->parent_fd);
}

/* Shared memory objects are saved whole, once per image (shmem.h),
 * not as pages of each process mapping them. */
static int dump_shmem(struct image *img, pid_t pid, int procfd, const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		char link[64];
		if (v->kind != VMA_SHMEM)
			continue;
		snprintf(link, sizeof(link), "map_files/%" PRIx64 "-%" PRIx64, v->start, v->end);
		_cleanup_close_ int fd = openat(procfd, link, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return log_error_errno(-errno, "pid %d: cannot open shared memory %s: %m", pid, v->path);
		int r = shobj_save(img, fd, &v->obj);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The parent's pagemap, for the pages this process still shares with
 * it; without one (root, no permission to see frame numbers) every page
 * is saved here. */
static void open_parent(struct page_writer *w, pid_t pid, const struct mm_parent *parent)
{
	if (!parent)
		return;
	w->parent = parent->mm;
	w->parent_fd = openat(parent->procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	if (w->parent_fd < 0)
		log_debug("pid %d: cannot open its parent's pagemap (%m): its shared pages are saved here", pid);
}

/* The index of the pages shared with the parent: written only when there
 * are some, so images without sharing stay as they were. */
static int put_refs(struct image *img, pid_t pid, const struct page_writer *w)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *enc = NULL;
	size_t enc_len;
	if (!w->nrefs)
		return 0;
	int r = pagemap_encode(w->refs, w->nrefs, &enc, &enc_len);
	return r < 0 ? r : image_put(img, image_name_pagerefs(name, pid), enc, enc_len);
}

int mm_dump_pages(struct image *img, pid_t pid, int procfd, struct remote *r, struct mm_rec *m,
		  const struct mm_parent *parent)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_close_ int pagemap_fd = openat(procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	struct page_writer w = { .pid = pid, .mem_fd = r->mem_fd, .parent_fd = -1, .warm = m->warm,
				 .big = mm_warm_bytes(m->warm) >= COPY_BUF };
	_cleanup_free_ void *enc = NULL;
	size_t enc_len;
	int ret;

	if (pagemap_fd < 0)
		return log_error_errno(-errno, "pid %d: cannot open pagemap: %m", pid);
	ret = hash_vdso(r, m);
	if (ret < 0)
		return log_error_errno(ret, "pid %d: cannot read vdso: %m", pid);
	if ((ret = dump_shmem(img, pid, procfd, m)) < 0)
		return ret;
	ret = image_stream_open(img, image_name_pages(name, pid), &w.out);
	if (ret < 0)
		return ret;
	if ((ret = image_stream_sum_blocks(w.out, image_name_pagesums(name, pid))) < 0 ||
	    (image_page_compression(img) && (ret = image_stream_compress(w.out, image_page_compression(img))) < 0)) {
		image_stream_abort(w.out);
		return ret;
	}
	open_parent(&w, pid, parent);
	uint64_t t0 = now_ns();
	ret = writer_start(&w);
	for (size_t i = 0; i < m->nvmas && ret >= 0 && !m->no_pages; i++)
		if (vma_has_pages(&m->vmas[i]))
			ret = dump_vma(&w, pagemap_fd, m, &m->vmas[i]);
	w.last = true;
	if (ret >= 0)
		ret = writer_flush(&w);
	uint64_t t1 = now_ns();
	int wret = writer_finish(&w);
	if (ret >= 0)
		ret = wret;
	log_debug("pid %d: pages scanned and copied in %.1f ms, the last written %.1f ms later", pid,
		  (double)(t1 - t0) / 1e6, (double)(now_ns() - t1) / 1e6);
	if (ret < 0) {
		if (ret != -EINTR || !interrupt_pending())
			log_error_errno(ret, "pid %d: cannot save memory pages: %m", pid);
		image_stream_abort(w.out);
		goto out;
	}
	ret = image_stream_close(w.out);
	if (ret < 0)
		goto out;
	ret = pagemap_encode(w.pm, w.npm, &enc, &enc_len);
	if (ret < 0)
		goto out;
	ret = image_put(img, image_name_pagemap(name, pid), enc, enc_len);
	if (ret >= 0)
		ret = put_refs(img, pid, &w);
	if (ret >= 0 && w.nchain) {
		free(enc);
		enc = NULL;
		ret = pagemap_encode(w.chain, w.nchain, &enc, &enc_len);
		if (ret >= 0)
			ret = image_put(img, image_name_chainpages(name, pid), enc, enc_len);
	}
	m->chain_pages = w.chain_pages;
	m->pages = w.pages;
	m->parent_pages = w.ref_pages;
	log_debug("pid %d: %" PRIu64 " pages in %zu runs, %" PRIu64 " shared with its parent in %zu runs, %" PRIu64
		  " unchanged since the parent image", pid, w.pages, w.npm, w.ref_pages, w.nrefs, w.chain_pages);
out:
	writer_free(&w);
	return ret;
}

/* The copy thread yields to the remote calls' round trips (nice is per
 * thread on Linux; its writer thread inherits it). Measured under other
 * jobs' load (5-12) here: with both helpers at nice 0 the calls took
 * 13-130 ms beside them, at 10 they took 10-30 ms but the helpers starved
 * (the freeze up to 230 ms). The smaps reader stays at 0: it is the
 * longest of the three (7-13 ms quiet, 60-270 ms at load 7-13 when
 * niced). */
#define COPY_NICE 5

struct mm_copy {
	pthread_t thread;
	struct image *img;
	pid_t pid;
	int procfd;
	struct remote *r;
	struct mm_rec *m;
	int ret;
};

static void *copy_main(void *arg)
{
	struct mm_copy *j = arg;
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), COPY_NICE);
	j->ret = mm_dump_pages(j->img, j->pid, j->procfd, j->r, j->m, NULL);
	return NULL;
}

int mm_dump_pages_start(struct image *img, pid_t pid, int procfd, struct remote *r, struct mm_rec *m,
			struct mm_copy **ret)
{
	struct mm_copy *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct mm_copy){ .img = img, .pid = pid, .procfd = procfd, .r = r, .m = m };
	int e = -pthread_create(&j->thread, NULL, copy_main, j);
	if (e < 0) {
		free(j);
		return e;
	}
	*ret = j;
	return 0;
}

int mm_dump_pages_join(struct mm_copy *j)
{
	pthread_join(j->thread, NULL);
	int r = j->ret;
	free(j);
	return r;
}

/* The process reads its pages itself, in a few remote syscalls, from our
 * fd to the page file: the image need not be visible where it lives (a
 * container). */
static int read_in(struct remote *r, pid_t tid, const struct mm_pages *mp, int ctl, int tfd)
{
	const struct pagemap_entry *pm = mp->pm;
	size_t n = mp->n;
	int ret = 0;
	long fd = fdpass_push(r, tid, ctl, tfd, mp->fd);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot pass the page file in: %m", r->pid);

	const uint64_t iov_at = r->scratch + 128 * 1024;
	log_debug("pid %d: filling %zu page runs", r->pid, n);
	size_t i = 0;
	while (i < n && ret >= 0) {
		struct iovec iov[MAX_IOV];
		size_t k = 0;
		uint64_t total = 0, off = pm[i].offset;
		while (i < n && k < MAX_IOV && total < (1ULL << 30)) {
			iov[k++] = (struct iovec){ (void *)pm[i].vaddr, pm[i].nr_pages * PAGE_SIZE };
			total += pm[i].nr_pages * PAGE_SIZE;
			i++;
		}
		ret = remote_write(r, iov_at, iov, k * sizeof(iov[0]));
		if (ret < 0)
			break;
		/* Let the kernel allocate big runs in one go (~8 GB/s) instead of
		 * one fault per page during the read (~0.3 GB/s here). */
		for (size_t q = 0; q < k; q++)
			if (iov[q].iov_len >= POPULATE_MIN)
				remote_syscall(r, tid, SYS_madvise, iov[q].iov_base, iov[q].iov_len, MADV_POPULATE_WRITE);
		log_debug("pid %d: populated %zu runs", r->pid, k);
		long got = remote_syscall(r, tid, SYS_preadv, fd, iov_at, k, off, 0);
		log_debug("pid %d: read %ld bytes", r->pid, got);
		if (got < 0)
			ret = log_error_errno((int)got, "pid %d: cannot fill memory from %s: %m", r->pid, mp->name);
		else if ((uint64_t)got != total)
			ret = log_error_errno(-EIO, "pid %d: short read of page data (%ld of %" PRIu64 " bytes)",
					      r->pid, got, total);
		else
			progress_add(total);
	}
	remote_syscall(r, tid, SYS_close, fd);
	return ret;
}

int mm_pages_open(struct image *img, const struct mm_rec *m, pid_t pid, struct mm_pages *ret)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;
	uint64_t size;

	image_name_pages(ret->name, pid);
	int e = image_open_file(img, ret->name, &fd, &size);
	if (e < 0)
		return e;
	ret->zstd = image_compressed(img, ret->name);
	if (ret->zstd && image_raw_size(img, ret->name, &size) < 0)
		return log_error_errno(-EBADMSG, "manifest.json: compressed '%s' has no valid raw_size", ret->name);
	if (size != m->pages * PAGE_SIZE)
		return log_error_errno(-EBADMSG, "image file '%s' holds %" PRIu64 " bytes where mm-%d.json says %"
				       PRIu64 " pages were saved", ret->name, size, pid, m->pages);
	e = image_get(img, image_name_pagemap(name, pid), (size_t)PAGEMAP_MAX_ENTRIES * sizeof(struct pagemap_entry) + 64,
		      &buf, &len);
	if (e < 0)
		return e;
	e = pagemap_decode(buf, len, size, &ret->pm, &ret->n);
	if (e < 0)
		return log_error_errno(e, "image file '%s' is damaged: bad page index", name);
	ret->fd = TAKE_FD(fd);
	return 0;
}

void mm_pages_close(struct mm_pages *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->pm);
	*p = (struct mm_pages){ .fd = -1 };
}

/* Restore: the process reads its own pages from the page file. */
int mm_restore_pages(struct remote *r, pid_t tid, struct image *img, const struct mm_rec *m, int ctl, int tfd)
{
	struct mm_pages mp = { .fd = -1 };
	int ret = mm_pages_open(img, m, r->pid, &mp);
	if (ret >= 0)
		ret = mp.n == 0 ? 0 : mp.zstd ? mm_fill_zstd(r, img, mp.name, mp.pm, mp.n) : read_in(r, tid, &mp, ctl, tfd);
	mm_pages_close(&mp);
	return ret;
}

int mm_mark_filled(struct image *img, struct mm_rec *m, pid_t pid, bool all)
{
	struct mm_pages mp = { .fd = -1 };
	int e = all ? 0 : mm_pages_open(img, m, pid, &mp);
	size_t k = 0;
	for (size_t i = 0; e >= 0 && i < m->nvmas; i++) {
		struct vma_rec *v = &m->vmas[i];
		/* Both sorted by address: one walk. */
		while (k < mp.n && mp.pm[k].vaddr + mp.pm[k].nr_pages * PAGE_SIZE <= v->start)
			k++;
		v->filled = all || (k < mp.n && mp.pm[k].vaddr < v->end);
	}
	mm_pages_close(&mp);
	return e;
}
