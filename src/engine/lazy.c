/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lazy restore, the restoring command's side (lazy.h): start the filler,
 * hand it each process's anonymous memory, let it stream once the tree
 * runs, and (--wait-lazy) wait for it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/lazy.h"
#include "engine/mm-fill.h"
#include "engine/uffd.h"
#include "image/pagemap.h"
#include "image/pagesums.h"
#include "image/xxh3-fast.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

bool lazy_possible(struct image *img, pid_t pid)
{
	char name[IMAGE_NAME_MAX];
	return image_has(img, image_name_pagesums(name, pid));
}

/* A compressed page file (dump --compress) is one zstd stream: no block
 * can be read on its own, so lazy restore refuses it rather than
 * silently restoring eagerly what the user asked to resume at once. */
int lazy_refuse_compressed(struct image *img, pid_t pid)
{
	char name[IMAGE_NAME_MAX];
	if (!image_compressed(img, image_name_pages(name, pid)))
		return 0;
	return log_error_errno(-EOPNOTSUPP, "pid %d: the image's pages are compressed (dump --compress) and "
			       "--lazy needs random access; restore it without --lazy", pid);
}

/* The image's page data of one process, split by the mappings it lands
 * in: private anonymous memory lazily, the rest (copy-on-write pages of
 * file mappings, and mappings a child shares copy-on-write: restore.c)
 * now. */
struct split {
	struct lazy_seg *lazy, *eager;
	size_t nlazy, neager;
};

static int push_seg(struct lazy_seg **v, size_t *n, struct lazy_seg s)
{
	if (!(*n & (*n - 1)) || !*n) { /* grow at powers of two */
		struct lazy_seg *p = realloc(*v, (*n ? *n * 2 : 16) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
	}
	(*v)[(*n)++] = s;
	return 0;
}

/* Lazy unless the restore itself writes there before the tree runs: a
 * fault then would wait for a whole batch of the filler's. */
static int push_piece(struct split *sp, const struct touched *tp, struct lazy_seg s, bool lazy)
{
	int r = 0;
	for (size_t i = 0; lazy && i < tp->n && r >= 0; i++) {
		uint64_t pg = tp->addr[i] & ~(PAGE_SIZE - 1);
		if (pg < s.vaddr || pg >= s.vaddr + s.len)
			continue;
		struct lazy_seg head = { s.vaddr, pg - s.vaddr, s.off }, page = { pg, PAGE_SIZE, s.off + head.len };
		if (head.len)
			r = push_seg(&sp->lazy, &sp->nlazy, head);
		if (r >= 0)
			r = push_seg(&sp->eager, &sp->neager, page);
		s = (struct lazy_seg){ pg + PAGE_SIZE, s.len - head.len - PAGE_SIZE, page.off + PAGE_SIZE };
	}
	if (r < 0 || !s.len)
		return r;
	return lazy ? push_seg(&sp->lazy, &sp->nlazy, s) : push_seg(&sp->eager, &sp->neager, s);
}

static int split_runs(const struct mm_rec *m, const struct pagemap_entry *pm, size_t n, const struct touched *tp,
		      struct split *sp)
{
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		uint64_t a = pm[i].vaddr, end = a + pm[i].nr_pages * PAGE_SIZE, off = pm[i].offset;
		while (a < end && r >= 0) {
			while (k < m->nvmas && m->vmas[k].end <= a)
				k++;
			const struct vma_rec *v = k < m->nvmas && m->vmas[k].start <= a ? &m->vmas[k] : NULL;
			uint64_t to = v && v->end < end ? v->end : end;
			struct lazy_seg s = { a, to - a, off };
			r = push_piece(sp, tp, s, v && v->kind == VMA_ANON && !v->keep && !v->eager);
			off += to - a, a = to;
		}
	}
	return r;
}

/* Checks the blocks of the page file in [from, to) (block aligned, to
 * may be the file's end), a batch at a time. */
static int verify_range(int fd, const struct pagesums *ps, uint64_t from, uint64_t to, uint8_t *buf, const char *name)
{
	while (from < to) {
		size_t len = (size_t)(to - from < PAGESUMS_BATCH ? to - from : PAGESUMS_BATCH);
		uint64_t bad;
		int e = pread_exact(fd, buf, len, (off_t)from);
		if (e < 0)
			return log_error_errno(e, "cannot read image file '%s': %m", name);
		if ((e = pagesums_check(ps, from, buf, len, &bad)) < 0)
			return log_error_errno(-EBADMSG, "image file '%s' is damaged: checksum mismatch in block %" PRIu64
					       " (bytes %" PRIu64 "+%" PRIu64 ")", name, bad, bad << ps->shift,
					       (uint64_t)1 << ps->shift);
		from += len;
	}
	return 0;
}

struct proc_pages {
	pid_t pid;
	int fd, sums_fd;
	uint64_t size, sums_len, sums_hash;
	struct pagemap_entry *pm;
	size_t n;
	/* Only the sums of the blocks checked here are decoded (sums_of):
	 * the filler decodes the whole file once the tree runs. The file is
	 * checked whole before (check_sums_file): 128 KiB per GiB. */
	struct pagesums sums;
	uint64_t partial; /* fill_eager: where a segment cut by a window goes on */
	char name[IMAGE_NAME_MAX];
};

/* The sums of blocks [from, to) into pp->sums, whose array has room for
 * all and is written (so touched) only there. */
static int sums_of(struct proc_pages *pp, uint64_t from, uint64_t to)
{
	uint64_t n = to - from, raw[512];
	if (!pp->sums.sums && !(pp->sums.sums = malloc(pp->sums.n * 8 + 8)))
		return -ENOMEM;
	for (uint64_t done = 0; done < n;) {
		uint64_t k = n - done < 512 ? n - done : 512;
		int e = pread_exact(pp->sums_fd, raw, k * 8, (off_t)(PAGESUMS_HEADER + (from + done) * 8));
		if (e < 0)
			return e;
		pagesums_entries(raw, k, pp->sums.sums + from + done);
		done += k;
	}
	return 0;
}

/* One read of the page file for the eager pages: [from, to), whole
 * blocks, and the pieces of segments in it. */
struct window {
	uint64_t from, to;
	size_t first, n;   /* segments (the first and last ones maybe in part) */
	uint64_t head_off; /* where the first one's piece starts in the file */
};

/* The next window from segment i at file offset off: up to a batch, and
 * never across a block that no segment needs. */
static struct window next_window(const struct split *sp, const struct pagesums *ps, size_t i, uint64_t off)
{
	const uint64_t bs = 1ULL << ps->shift;
	struct window w = { off & ~(bs - 1), 0, i, 0, off };
	uint64_t end = w.from + PAGESUMS_BATCH;
	for (size_t j = i; j < sp->neager; j++) {
		const struct lazy_seg *s = &sp->eager[j];
		uint64_t a = j == i ? off : s->off, e = s->off + s->len < end ? s->off + s->len : end;
		if (j > i && (a >= end || (a & ~(bs - 1)) > ((w.to + bs - 1) & ~(bs - 1))))
			break;
		w.to = e, w.n++;
		if (e < s->off + s->len)
			break;
	}
	w.to = (w.to + bs - 1) & ~(bs - 1);
	if (w.to > ps->file_size)
		w.to = ps->file_size;
	return w;
}

/* Writes the window's pieces of segments, read into buf, into the process. */
static int write_window(struct remote *r, const struct split *sp, const struct window *w, const uint8_t *buf)
{
	for (size_t j = w->first; j < w->first + w->n; j++) {
		const struct lazy_seg *s = &sp->eager[j];
		uint64_t a = j == w->first ? w->head_off : s->off, e = s->off + s->len < w->to ? s->off + s->len : w->to;
		struct iovec rem = { (void *)(uintptr_t)(s->vaddr + (a - s->off)), (size_t)(e - a) };
		void *at;
		int err = fill_write_in(r, buf + (a - w->from), rem.iov_len, &rem, 1, &at);
		if (err < 0)
			return log_error_errno(err, "pid %d: cannot fill memory at %p: %m", r->pid, at);
	}
	return 0;
}

/* The eager pages, read once by us: checked against the sums of their
 * blocks (the whole file's checksum is not read in a lazy restore), then
 * written into the process; the small blocks keep what is read to little
 * more than the pages. Only the sums of those blocks are decoded here;
 * the whole sums file was checked against its checksum before
 * (check_sums_file), and no page that does not match is ever written. */
static int fill_eager(struct remote *r, struct proc_pages *pp, const struct split *sp)
{
	const struct pagesums *ps = &pp->sums;
	uint64_t need = 0, bs = 1ULL << ps->shift;
	for (size_t i = 0; i < sp->neager; i++) /* the blocks it touches */
		need += ((sp->eager[i].off + sp->eager[i].len + bs - 1) & ~(bs - 1)) - (sp->eager[i].off & ~(bs - 1));
	size_t cap = (size_t)(need < PAGESUMS_BATCH ? need : PAGESUMS_BATCH);
	/* Populated at once: page faults are slow here (DESIGN.md §7). */
	uint8_t *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int e = buf == MAP_FAILED ? -errno : 0;
	for (size_t i = 0; e >= 0 && i < sp->neager;) {
		struct window w = next_window(sp, ps, i, pp->partial ? pp->partial : sp->eager[i].off);
		if ((e = sums_of(pp, w.from >> ps->shift, pagesums_count(w.to, ps->shift))) < 0) {
			log_error_errno(e, "cannot read image file 'pagesums-%d.img': %m", pp->pid);
			break;
		}
		if ((e = verify_range(pp->fd, ps, w.from, w.to, buf, pp->name)) < 0 ||
		    (e = write_window(r, sp, &w, buf)) < 0)
			break;
		const struct lazy_seg *last = &sp->eager[w.first + w.n - 1];
		bool cut = last->off + last->len > w.to; /* the last one goes on in the next window */
		pp->partial = cut ? w.to : 0;
		i = w.first + w.n - (cut ? 1 : 0);
	}
	if (buf != MAP_FAILED)
		munmap(buf, cap);
	return e;
}

/* The whole sums file against the image's checksum of it, before any
 * page checked against it goes in: an image edited in both its pages and
 * their sums must be refused before the tree runs, not found by the
 * filler after. It is 8 bytes per 64 KiB block (128 KiB per GiB). */
static int check_sums_file(const struct proc_pages *pp, const char *name)
{
	_cleanup_free_ uint8_t *buf = malloc(pp->sums_len + 1);
	if (!buf)
		return -ENOMEM;
	int e = pread_exact(pp->sums_fd, buf, pp->sums_len, 0);
	if (e < 0 && e != -EIO)
		return log_error_errno(e, "cannot read image file '%s': %m", name);
	if (e < 0 || xxh3_fast(buf, pp->sums_len) != pp->sums_hash)
		return log_error_errno(-EBADMSG, "image file '%s' is damaged: checksum mismatch", name);
	return 0;
}

static int load_pages(struct image *img, pid_t pid, const struct mm_rec *m, struct proc_pages *pp)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *buf = NULL;
	uint8_t hdr[PAGESUMS_HEADER];
	size_t len;
	int r = image_open_file(img, image_name_pages(pp->name, pid), &pp->fd, &pp->size);
	if (r < 0)
		return r;
	if (pp->size != m->pages * PAGE_SIZE)
		return log_error_errno(-EBADMSG, "image file '%s' holds %" PRIu64 " bytes where mm-%d.json says %"
				       PRIu64 " pages were saved", pp->name, pp->size, pid, m->pages);
	r = image_get(img, image_name_pagemap(name, pid), (size_t)PAGEMAP_MAX_ENTRIES * sizeof(struct pagemap_entry) + 64,
		      &buf, &len);
	if (r < 0)
		return r;
	if (pagemap_decode(buf, len, pp->size, &pp->pm, &pp->n) < 0)
		return log_error_errno(-EBADMSG, "image file '%s' is damaged: bad page index", name);
	image_name_pagesums(name, pid);
	if ((r = image_open_file(img, name, &pp->sums_fd, &pp->sums_len)) < 0 ||
	    (r = image_file_xxh3(img, name, &pp->sums_hash)) < 0 || (r = check_sums_file(pp, name)) < 0)
		return r;
	if ((r = pread_exact(pp->sums_fd, hdr, sizeof(hdr), 0)) < 0 && r != -EIO)
		return log_error_errno(r, "cannot read image file '%s': %m", name);
	if (r < 0 || pagesums_header(hdr, pp->sums_len, pp->size, &pp->sums) < 0)
		return log_error_errno(-EBADMSG, "image file '%s' is damaged: bad block checksums", name);
	return 0;
}

static void proc_pages_done(struct proc_pages *pp)
{
	if (pp->fd >= 0)
		close(pp->fd);
	if (pp->sums_fd >= 0)
		close(pp->sums_fd);
	free(pp->pm);
	free(pp->sums.sums);
}

/* Every private anonymous mapping that has saved pages, whole: a page
 * the original never touched faults to the filler too (a zero page). */
static int register_all(int uffd, const struct mm_rec *m, const struct split *sp)
{
	size_t k = 0;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		while (k < sp->nlazy && sp->lazy[k].vaddr < v->start)
			k++;
		if (v->kind != VMA_ANON || k == sp->nlazy || sp->lazy[k].vaddr >= v->end)
			continue;
		int e = uffd_register(uffd, v->start, v->end - v->start);
		if (e < 0)
			return e;
	}
	return 0;
}

/* The mappings the filler makes huge pages of again once all is in. */
static int write_thp(int mfd, const struct mm_rec *m, uint32_t *ret_n)
{
	uint32_t n = 0;
	for (size_t i = 0; i < m->nvmas; i++) {
		struct lazy_range g;
		if (!mm_thp_range(&m->vmas[i], &g.start, &g.len))
			continue;
		int e = write_all(mfd, &g, sizeof(g));
		if (e < 0)
			return e;
		n++;
	}
	*ret_n = n;
	return 0;
}

static int send_proc(int sock, pid_t pid, int fds[3], const struct split *sp, const struct proc_pages *pp,
		     const struct mm_rec *m)
{
	_cleanup_close_ int mfd = memfd_create("stasis-lazy", MFD_CLOEXEC);
	uint32_t nthp = 0;
	if (mfd < 0)
		return -errno;
	int e = write_all(mfd, sp->lazy, sp->nlazy * sizeof(*sp->lazy));
	if (e >= 0 && sp->nlazy)
		e = write_thp(mfd, m, &nthp);
	if (e < 0)
		return e;
	struct lazy_msg msg = { LAZY_PROC, pid, sp->nlazy, pp->sums.n, pp->size, pp->sums.shift, nthp,
				pp->sums_len, pp->sums_hash };
	int all[LAZY_FDS] = { fds[0], fds[1], fds[2], mfd, pp->sums_fd };
	char cbuf[CMSG_SPACE(sizeof(all))] = { 0 };
	struct iovec iov = { &msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(all));
	memcpy(CMSG_DATA(c), all, sizeof(all));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int lazy_part(struct remote *r, pid_t tid, int pidfd, const struct mm_rec *m, int ctl, int tfd, int sock,
		     struct split *sp, struct proc_pages *pp)
{
	_cleanup_close_ int uffd = -1;
	int e;
	uint64_t t0 = now_ns();
	if (sp->neager) {
		if ((e = fill_eager(r, pp, sp)) < 0)
			return e;
		log_debug("pid %d: eager pages checked and filled (%.1f ms)", r->pid, (double)(now_ns() - t0) / 1e6);
	}
	if (!sp->nlazy) { /* nothing to fill, but killed with the tree on damage */
		int fds[3] = { pidfd, pidfd, pp->fd };
		e = send_proc(sock, r->pid, fds, sp, pp, m);
		return e < 0 ? log_error_errno(e, "pid %d: cannot tell the lazy filler about it: %m", r->pid) : 0;
	}
	if ((e = uffd_open_in(r, tid, ctl, tfd, pidfd, &uffd)) < 0)
		return e;
	if ((e = register_all(uffd, m, sp)) < 0)
		return log_error_errno(e, "pid %d: cannot register its memory with userfaultfd: %m", r->pid);
	int fds[3] = { uffd, pidfd, pp->fd };
	if ((e = send_proc(sock, r->pid, fds, sp, pp, m)) < 0)
		return log_error_errno(e, "pid %d: cannot hand its memory to the lazy filler: %m", r->pid);
	log_debug("pid %d: %zu page runs lazy, %zu now (%.1f ms)", r->pid, sp->nlazy, sp->neager,
		  (double)(now_ns() - t0) / 1e6);
	return 0;
}

int lazy_restore_pages(struct remote *r, pid_t tid, int pidfd, struct image *img, const struct mm_rec *m,
		       const struct touched *tp, int ctl, int tfd, int sock)
{
	struct proc_pages pp = { .pid = r->pid, .fd = -1, .sums_fd = -1 };
	struct split sp = { 0 };
	int e = load_pages(img, r->pid, m, &pp);
	log_debug("pid %d: page index loaded", r->pid);
	if (e >= 0 && (e = split_runs(m, pp.pm, pp.n, tp, &sp)) < 0)
		log_error_errno(e, "pid %d: cannot split its page runs: %m", r->pid);
	if (e >= 0)
		e = lazy_part(r, tid, pidfd, m, ctl, tfd, sock, &sp, &pp);
	free(sp.lazy);
	free(sp.eager);
	proc_pages_done(&pp);
	return e;
}
