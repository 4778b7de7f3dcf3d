/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lazy filler (lazy.h): a process of ours, forked by the restoring
 * command. Its main thread reads the restore's messages and the
 * processes' userfaultfds (faults, and the events that move or remove
 * memory); a worker thread per core (at most MAX_WORKERS) fills, a
 * fault's block first, else the next block in file order, each reading,
 * checking and copying its own blocks: reading and checking 1 GiB costs
 * about as much CPU as UFFDIO_COPY does (~0.2 s each here), so a reader
 * thread feeding one copier left half of the second core idle. A fault on
 * a block another worker is filling waits for that block, and no block is
 * read twice (unless the process moved memory that was not in yet). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/lazy.h"
#include "engine/proc.h"
#include "engine/syscalls.h"
#include "engine/uffd.h"
#include "image/pagesums.h"
#include "util/cleanup.h"
#include "util/inject.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_TARGETS 4096
#define MAX_THP 65536
#define MAX_WORKERS 4
enum { TODO = 0, BUSY = 1, DONE = 2, REDO = 4 };

struct seg {
	uint64_t vaddr, len, off;
	bool dead; /* unmapped or dropped (MADV_DONTNEED) by the process */
};

struct target {
	pid_t pid;  /* as the image names it (its page file; a child: its parent's) */
	pid_t hpid; /* in our pid namespace, for /proc (0: a child not found yet) */
	int uffd, pidfd, fd;
	struct seg *seg; /* in page file order */
	size_t nseg, cap;
	struct pagesums ps; /* checks of the page file, in small blocks */
	int sums_fd;        /* their file, read and checked (load_sums) before any fill */
	uint64_t sums_len, sums_hash;
	uint64_t nbatch, size;
	uint8_t *state; /* per batch (PAGESUMS_BATCH): a "block" below */
	uint64_t next;  /* no TODO block before this one */
	struct lazy_range *thp; /* made huge pages of again at the end (mm-thp.c) */
	uint32_t nthp;
	bool gone;
	bool child; /* forked by a restored process while its memory was filled */
	struct target *parent; /* child: its pid is found once it is listed */
};

struct fault {
	struct target *t;
	uint64_t addr;
};

static struct {
	struct target *t[MAX_TARGETS];
	size_t n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fault *q;
	size_t nq, capq;
	bool go;
	struct restore_stats *st;
	int warden; /* lazy-warden.c: our socket to it */
	pid_t warden_pid;
	unsigned busy;    /* blocks being filled */
	int pause_state;  /* 0, 1: a worker is in inject_pause, 2: past it */
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .warden = -1 };

/* --- the segments, changed by the process's own munmap, madvise, mremap --- */

static int seg_insert(struct target *t, size_t at, struct seg s)
{
	if (t->nseg == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct seg *p = realloc(t->seg, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->seg = p, t->cap = nc;
	}
	memmove(&t->seg[at + 1], &t->seg[at], (t->nseg - at) * sizeof(*t->seg));
	t->seg[at] = s;
	t->nseg++;
	return 0;
}

/* Cuts the live segment holding addr (if any) in two at addr. */
static int seg_cut(struct target *t, uint64_t addr)
{
	for (size_t i = 0; i < t->nseg; i++) {
		struct seg *s = &t->seg[i];
		if (s->dead || addr <= s->vaddr || addr >= s->vaddr + s->len)
			continue;
		uint64_t head = addr - s->vaddr;
		struct seg tail = { addr, s->len - head, s->off + head, false };
		s->len = head;
		return seg_insert(t, i + 1, tail);
	}
	return 0;
}

static int seg_cut2(struct target *t, uint64_t start, uint64_t end)
{
	int r = seg_cut(t, start);
	return r < 0 ? r : seg_cut(t, end);
}

static bool seg_in(const struct seg *s, uint64_t start, uint64_t end)
{
	return !s->dead && s->vaddr >= start && s->vaddr + s->len <= end;
}

/* The process dropped or unmapped [start, end): never fill it. */
static int seg_remove(struct target *t, uint64_t start, uint64_t end)
{
	int r = seg_cut2(t, start, end);
	for (size_t i = 0; r >= 0 && i < t->nseg; i++)
		if (seg_in(&t->seg[i], start, end))
			t->seg[i].dead = true;
	return r;
}

static void block_reset(struct target *t, const struct seg *s)
{
	for (uint64_t b = s->off >> PAGESUMS_BATCH_SHIFT; b <= (s->off + s->len - 1) >> PAGESUMS_BATCH_SHIFT; b++) {
		if (t->state[b] == DONE)
			t->state[b] = TODO;
		else if (t->state[b] & BUSY)
			t->state[b] |= REDO;
		if (b < t->next)
			t->next = b;
	}
}

/* The process moved [from, from+len) to `to`: pages not in yet go there,
 * and blocks filled meanwhile are filled again (present pages stay). */
static int seg_move(struct target *t, uint64_t from, uint64_t to, uint64_t len)
{
	int r = seg_cut2(t, from, from + len);
	for (size_t i = 0; r >= 0 && i < t->nseg; i++) {
		struct seg *s = &t->seg[i];
		if (!seg_in(s, from, from + len))
			continue;
		s->vaddr = s->vaddr - from + to;
		block_reset(t, s);
	}
	return r;
}

static struct seg *seg_find(struct target *t, uint64_t addr)
{
	for (size_t i = 0; i < t->nseg; i++)
		if (!t->seg[i].dead && addr >= t->seg[i].vaddr && addr < t->seg[i].vaddr + t->seg[i].len)
			return &t->seg[i];
	return NULL;
}

/* --- filling --- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static pid_t new_child(const struct target *p);

/* Damage or a failure we cannot fill past: no process of the tree may
 * run on with memory it would find missing or wrong. */
static void fail(const char *fmt, ...)
{
	char msg[sizeof(F.st->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < F.n; i++) {
		struct target *t = F.t[i];
		if (t->child && !t->hpid && (t->hpid = new_child(t->parent)) > 0)
			t->pidfd = sys_pidfd_open(t->hpid, 0);
		if (t->pidfd >= 0)
			sys_pidfd_send_signal(t->pidfd, SIGKILL);
	}
	lazy_warden_release(F.warden, F.warden_pid, false); /* killed here: it need not */
	memcpy(F.st->msg, msg, sizeof(msg));
	__atomic_store_n(&F.st->lazy_state, LAZY_FAILED, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&F.st->attached, __ATOMIC_SEQ_CST)) {
		stats_syslog(msg);
		log_error("%s", msg); /* the log file, when there is one */
	}
	_exit(1);
}

struct piece {
	uint64_t vaddr, len, at; /* at: offset in the block */
};

/* The live pieces of block b, copied out under the lock. */
static size_t block_pieces(struct target *t, uint64_t b, struct piece **ret)
{
	uint64_t lo = b << PAGESUMS_BATCH_SHIFT, hi = lo + PAGESUMS_BATCH;
	size_t n = 0;
	struct piece *p = NULL;
	for (size_t i = 0; i < t->nseg; i++) {
		const struct seg *s = &t->seg[i];
		if (s->dead || s->off + s->len <= lo || s->off >= hi)
			continue;
		uint64_t a = s->off > lo ? s->off : lo, e = s->off + s->len < hi ? s->off + s->len : hi;
		struct piece *np = realloc(p, (n + 1) * sizeof(*p));
		if (!np)
			fail("lazy restore: out of memory; the restored processes were killed");
		p = np;
		p[n++] = (struct piece){ s->vaddr + (a - s->off), e - a, a - lo };
	}
	*ret = p;
	return n;
}

static void copy_pieces(struct target *t, const struct piece *p, size_t n, const uint8_t *buf)
{
	for (size_t i = 0; i < n && !t->gone; i++) {
		int e = uffd_copy(t->uffd, p[i].vaddr, buf + p[i].at, p[i].len);
		if (e == -ESRCH) /* the process is gone */
			t->gone = true;
		else if (e == -ENOENT || e == -EFAULT)
			continue; /* unmapped or moved meanwhile: its event says which */
		else if (e < 0)
			fail("lazy restore: cannot fill memory of pid %d at %" PRIx64 ": %s; the restored processes "
			     "were killed", t->pid, p[i].vaddr, strerror(-e));
		else if (!t->child)
			__atomic_add_fetch(&F.st->lazy_done, p[i].len, __ATOMIC_RELAXED);
	}
}

/* Called and returns with the lock held. */
static size_t block_len(const struct target *t, uint64_t b)
{
	uint64_t at = b << PAGESUMS_BATCH_SHIFT;
	return (size_t)(t->size - at < PAGESUMS_BATCH ? t->size - at : PAGESUMS_BATCH);
}

/* Reads block b of t's page file into buf and checks it. */
static void read_block(const struct target *t, uint64_t b, uint8_t *buf)
{
	size_t len = block_len(t, b);
	uint64_t bad;
	int e = pread_exact(t->fd, buf, len, (off_t)(b << PAGESUMS_BATCH_SHIFT));
	if (e < 0)
		fail("lazy restore: cannot read the page data of pid %d: %s; the restored processes were "
		     "killed", t->pid, strerror(-e));
	if (pagesums_check(&t->ps, b << PAGESUMS_BATCH_SHIFT, buf, len, &bad) < 0)
		fail("image file 'pages-%d.img' is damaged: checksum mismatch in block %" PRIu64 " (bytes %"
		     PRIu64 "+%" PRIu64 "); the restored processes were killed (SIGKILL)", t->pid, bad,
		     bad << t->ps.shift, (uint64_t)1 << t->ps.shift);
}

/* Lock held; released while the block is read, checked and copied. */
static void fill_block(struct target *t, uint64_t b, uint8_t *buf)
{
	struct piece *p;
	size_t n = block_pieces(t, b, &p);
	t->state[b] = BUSY;
	F.busy++;
	pthread_mutex_unlock(&F.lock);
	if (n) {
		read_block(t, b, buf);
		copy_pieces(t, p, n, buf);
	}
	free(p);
	pthread_mutex_lock(&F.lock);
	t->state[b] = t->state[b] & REDO ? TODO : DONE;
	F.busy--;
	pthread_cond_broadcast(&F.cond); /* faults waiting for it, a worker waiting to finish */
}

/* Lock held. A fault outside every live segment is memory the original
 * never touched: a zero page. */
static void serve_fault(struct fault f, uint8_t *buf)
{
	struct target *t = f.t;
	uint64_t page = f.addr & ~(PAGE_SIZE - 1);
	struct seg *s = seg_find(t, page);
	__atomic_add_fetch(&F.st->faults, 1, __ATOMIC_RELAXED);
	if (s) {
		uint64_t b = (s->off + (page - s->vaddr)) >> PAGESUMS_BATCH_SHIFT;
		while (t->state[b] & BUSY) /* another worker's: never read twice */
			pthread_cond_wait(&F.cond, &F.lock);
		if (t->state[b] != DONE)
			fill_block(t, b, buf);
	}
	pthread_mutex_unlock(&F.lock);
	if (!s)
		uffd_zero(t->uffd, page, PAGE_SIZE);
	else
		uffd_wake(t->uffd, page, PAGE_SIZE);
	pthread_mutex_lock(&F.lock);
}

/* Lock held. The next block to fill, in file order, process by process. */
static bool next_block(struct target **ret_t, uint64_t *ret_b)
{
	for (size_t i = 0; i < F.n; i++) {
		struct target *t = F.t[i];
		while (!t->gone && t->next < t->nbatch && t->state[t->next] != TODO)
			t->next++;
		if (!t->gone && t->next < t->nbatch) {
			*ret_t = t, *ret_b = t->next;
			return true;
		}
	}
	return false;
}

/* Every page is in: the ranges that were in huge pages at dump become
 * huge pages again (mm-thp.c), by the kernel's MADV_COLLAPSE, which needs
 * the mapping free of the userfaultfd (every page of it present would do,
 * but a page the original never touched is not). Best effort: small
 * pages are only slower. */
static void collapse(struct target *t)
{
	uint64_t t0 = now_ns(), done = 0;
	if (!t->nthp || t->child) /* a process gone meanwhile: ESRCH, logged */
		return;
	for (uint32_t i = 0; i < t->nthp; i++) {
		struct iovec iov = { (void *)t->thp[i].start, t->thp[i].len };
		if (syscall(SYS_process_madvise, t->pidfd, &iov, 1, MADV_COLLAPSE, 0) < 0)
			log_debug("lazy: pid %d: no huge pages at %" PRIx64 " (MADV_COLLAPSE: %m)", t->pid, t->thp[i].start);
		else
			done += t->thp[i].len;
	}
	log_debug("lazy: pid %d: %" PRIu64 " MiB in huge pages again (%.1f ms)", t->pid, done >> 20,
		  (double)(now_ns() - t0) / 1e6);
}

static void finished(void)
{
	/* Let go of every userfaultfd first: a fault on a page the original
	 * never touched is the kernel's again, not one to wait for the
	 * collapses. The main thread stops polling them. The warden's
	 * copies go first. */
	lazy_warden_release(F.warden, F.warden_pid, true);
	for (size_t i = 0; i < F.n; i++) {
		F.t[i]->gone = true;
		if (F.t[i]->uffd >= 0)
			close(F.t[i]->uffd);
		F.t[i]->uffd = -1;
	}
	for (size_t i = 0; i < F.n; i++)
		collapse(F.t[i]);
	F.st->full_ns = now_ns() - F.st->t0_ns;
	__atomic_store_n(&F.st->lazy_state, LAZY_DONE, __ATOMIC_SEQ_CST);
	/* Closing the userfaultfds (at exit) unregisters the memory: faults on
	 * pages never touched are the kernel's again. */
	_exit(0);
}

/* Lock held. The tree runs, its faults wait meanwhile: tests kill us
 * here. One worker pauses, the others wait for it. */
static void pause_point(void)
{
	F.pause_state = 1;
	pthread_mutex_unlock(&F.lock);
	inject_pause("lazy:fill");
	pthread_mutex_lock(&F.lock);
	F.pause_state = 2;
	pthread_cond_broadcast(&F.cond);
}

static void *worker_main(void *arg)
{
	uint8_t *buf = arg;
	pthread_mutex_lock(&F.lock);
	for (;;) {
		struct target *t;
		uint64_t b;
		if (F.go && F.pause_state == 0) {
			pause_point();
		} else if (F.pause_state == 1) {
			pthread_cond_wait(&F.cond, &F.lock);
		} else if (F.nq) {
			struct fault f = F.q[--F.nq];
			serve_fault(f, buf);
		} else if (!F.go) {
			pthread_cond_wait(&F.cond, &F.lock);
		} else if (next_block(&t, &b)) {
			fill_block(t, b, buf);
		} else if (!F.busy) {
			finished();
		} else {
			pthread_cond_wait(&F.cond, &F.lock);
		}
	}
	return NULL;
}

/* A worker per core, each with a buffer of one batch. */
static int start_workers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
	for (unsigned i = 0; i < n; i++) {
		pthread_t th;
		void *buf = mmap(NULL, PAGESUMS_BATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				 -1, 0);
		if (buf == MAP_FAILED)
			return -errno;
		int e = pthread_create(&th, NULL, worker_main, buf);
		if (e != 0)
			return -e;
	}
	log_debug("lazy: %u threads fill memory", n);
	return 0;
}

/* --- the main thread: messages and userfaultfd events --- */

/* The block sums of t's page file, read whole and checked against the
 * image's checksum of them, before any of its blocks is filled: the
 * restore read only the few it needed (lazy.c). */
static void load_sums(struct target *t)
{
	struct pagesums ps;
	if (t->sums_fd < 0)
		return;
	uint8_t *buf = malloc(t->sums_len + 1);
	if (!buf)
		fail("lazy restore: out of memory; the restored processes were killed");
	int e = pread_exact(t->sums_fd, buf, t->sums_len, 0);
	if (e < 0)
		fail("lazy restore: cannot read image file 'pagesums-%d.img': %s; the restored processes were killed",
		     t->pid, strerror(-e));
	if (XXH3_64bits(buf, t->sums_len) != t->sums_hash)
		fail("image file 'pagesums-%d.img' is damaged: checksum mismatch; the restored processes were killed "
		     "(SIGKILL)", t->pid);
	if (pagesums_decode(buf, t->sums_len, t->size, &ps) < 0 || ps.n != t->ps.n || ps.shift != t->ps.shift)
		fail("image file 'pagesums-%d.img' is damaged: bad block checksums; the restored processes were "
		     "killed (SIGKILL)", t->pid);
	free(buf);
	t->ps.sums = ps.sums;
	close(t->sums_fd);
	t->sums_fd = -1;
}

static bool workers_started;

static int add_target(const struct lazy_msg *m, const int fds[LAZY_FDS])
{
	struct target *t = calloc(1, sizeof(*t));
	size_t segs = m->nseg * sizeof(struct lazy_seg), thp = m->nthp * sizeof(struct lazy_range);
	if (!t || F.n == MAX_TARGETS || m->nthp > MAX_THP || m->sum_shift < PAGESUMS_MIN_SHIFT || m->sum_shift > PAGESUMS_BATCH_SHIFT ||
	    m->nsums != pagesums_count(m->file_size, m->sum_shift) || m->sums_len != PAGESUMS_HEADER + m->nsums * 8)
		return -EINVAL;
	*t = (struct target){ .pid = m->pid, .hpid = proc_pidfd_pid(fds[1]), .uffd = fds[0], .pidfd = fds[1], .fd = fds[2],
			      .size = m->file_size, .ps = { m->file_size, m->nsums, m->sum_shift, NULL },
			      .sums_fd = fds[4], .sums_len = m->sums_len, .sums_hash = m->sums_hash,
			      .nbatch = pagesums_count(m->file_size, PAGESUMS_BATCH_SHIFT), .gone = !m->nseg };
	void *map = segs + thp ? mmap(NULL, segs + thp, PROT_READ, MAP_PRIVATE, fds[3], 0) : NULL;
	t->seg = calloc(m->nseg + 1, sizeof(*t->seg));
	t->state = calloc(t->nbatch + 1, 1);
	t->thp = malloc(thp + 1);
	if (map == MAP_FAILED || !t->seg || !t->state || !t->thp)
		return -ENOMEM;
	for (uint64_t i = 0; i < m->nseg; i++) {
		const struct lazy_seg *s = (const struct lazy_seg *)map + i;
		t->seg[i] = (struct seg){ s->vaddr, s->len, s->off, false };
		F.st->lazy_bytes += s->len;
	}
	t->nseg = t->cap = m->nseg;
	memcpy(t->thp, (const uint8_t *)map + segs, thp);
	t->nthp = m->nthp;
	if (map)
		munmap(map, segs + thp);
	close(fds[3]);
	if (t->gone) { /* nothing to fill: killed with the tree on damage */
		close(t->sums_fd);
		t->sums_fd = -1;
	}
	if (workers_started) /* else need_workers reads them */
		load_sums(t);
	if (lazy_warden_give(F.warden, t->uffd, t->pidfd) < 0)
		return -EIO;
	pthread_mutex_lock(&F.lock);
	F.t[F.n++] = t;
	pthread_mutex_unlock(&F.lock);
	return 0;
}

/* Returns 1 on LAZY_GO, 0 for a process, -1 at the end of the socket. */
static int read_sock(int sock)
{
	struct lazy_msg m;
	int fds[LAZY_FDS];
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	if (n == sizeof(m) && m.kind == LAZY_GO)
		return 1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (n != sizeof(m) || m.kind != LAZY_PROC || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(fds)))
		fail("lazy restore: bad message from the restore; the restored processes were killed");
	memcpy(fds, CMSG_DATA(c), sizeof(fds));
	if (add_target(&m, fds) < 0)
		fail("lazy restore: cannot take over the memory of pid %d; the restored processes were killed", m.pid);
	return 0;
}

static void queue_fault(struct target *t, uint64_t addr)
{
	if (F.nq == F.capq) {
		size_t nc = F.capq ? F.capq * 2 : 64;
		struct fault *q = realloc(F.q, nc * sizeof(*q));
		if (!q)
			fail("lazy restore: out of memory; the restored processes were killed");
		F.q = q, F.capq = nc;
	}
	F.q[F.nq++] = (struct fault){ t, addr };
}

/* The child a target just forked: the one of its children we do not know
 * (0 when it is not listed yet). */
static pid_t new_child(const struct target *p)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task", p->hpid);
	_cleanup_closedir_ DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", p->hpid, e->d_name);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		for (char *s = buf, *end; *s; s = end) {
			long pid = strtol(s, &end, 10);
			if (end == s)
				break;
			bool known = false;
			for (size_t i = 0; i < F.n && !known; i++)
				known = F.t[i]->hpid == pid;
			if (!known)
				return (pid_t)pid;
		}
	}
	return 0;
}

/* Lock held. The child has what its parent had filled; the rest of its
 * memory comes from us like its parent's. */
static int add_child(const struct target *p, int ufd)
{
	struct target *t = calloc(1, sizeof(*t));
	if (!t || F.n == MAX_TARGETS)
		return -ENOMEM;
	if (lazy_warden_give(F.warden, ufd, -1) < 0) {
		free(t);
		return -EIO;
	}
	*t = *p;
	t->uffd = ufd;
	t->child = true;
	t->parent = (struct target *)p;
	t->hpid = new_child(p);
	t->pidfd = t->hpid ? sys_pidfd_open(t->hpid, 0) : -1;
	t->seg = malloc((p->nseg + 1) * sizeof(*t->seg));
	t->state = malloc(p->nbatch + 1);
	if (!t->seg || !t->state)
		return -ENOMEM;
	memcpy(t->seg, p->seg, p->nseg * sizeof(*t->seg));
	t->cap = p->nseg;
	for (uint64_t b = 0; b < p->nbatch; b++)
		t->state[b] = p->state[b] == DONE ? DONE : TODO;
	t->next = 0;
	F.t[F.n++] = t;
	log_debug("lazy: pid %d forked pid %d (here)", p->pid, t->hpid);
	return 0;
}

static void on_event(struct target *t, const struct uffd_msg *m)
{
	int r = 0;
	if (t->child && !t->hpid && (t->hpid = new_child(t->parent)) > 0)
		t->pidfd = sys_pidfd_open(t->hpid, 0);
	if (m->event != UFFD_EVENT_PAGEFAULT)
		log_debug("lazy: pid %d: event %d: %llx %llx %llx", t->pid, m->event,
			  (unsigned long long)m->arg.remap.from, (unsigned long long)m->arg.remap.to,
			  (unsigned long long)m->arg.remap.len);
	if (m->event == UFFD_EVENT_PAGEFAULT && !F.go) /* waits for a whole batch: worth knowing */
		log_debug("lazy: pid %d: fault at %llx before the tree runs", t->pid,
			  (unsigned long long)m->arg.pagefault.address);
	pthread_mutex_lock(&F.lock);
	if (m->event == UFFD_EVENT_PAGEFAULT)
		queue_fault(t, m->arg.pagefault.address);
	else if (m->event == UFFD_EVENT_REMOVE || m->event == UFFD_EVENT_UNMAP)
		r = seg_remove(t, m->arg.remove.start, m->arg.remove.end);
	else if (m->event == UFFD_EVENT_REMAP)
		r = seg_move(t, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
	else if (m->event == UFFD_EVENT_FORK)
		r = add_child(t, (int)m->arg.fork.ufd);
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	if (r < 0)
		fail("lazy restore: cannot follow pid %d's fork or change of mappings: %s; the restored processes were "
		     "killed", t->pid, strerror(-r));
}

/* The workers start at the first fault or when the tree runs, not
 * before: they would take the cores from the restore, which the tree
 * waits for. Main thread only. */
static void need_workers(void)
{
	if (workers_started)
		return;
	workers_started = true;
	for (size_t i = 0; i < F.n; i++)
		load_sums(F.t[i]);
	int e = start_workers();
	if (e < 0)
		fail("lazy restore: cannot start the filler's threads: %s; the restored processes were killed",
		     strerror(-e));
}

static void read_uffd(struct target *t)
{
	struct uffd_msg m[16];
	for (;;) {
		ssize_t n = read(t->uffd, m, sizeof(m));
		if (n <= 0) {
			if (errno != EAGAIN)
				log_debug("lazy: pid %d: read: %m", t->pid);
			return; /* EAGAIN: all read */
		}
		need_workers();
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++)
			on_event(t, &m[i]);
	}
}

static void serve(int sock)
{
	static struct pollfd pf[MAX_TARGETS + 1];
	static struct target *of[MAX_TARGETS + 1];
	for (;;) {
		size_t n = 0;
		if (sock >= 0)
			pf[n] = (struct pollfd){ sock, POLLIN, 0 }, of[n++] = NULL;
		for (size_t i = 0; i < F.n; i++)
			if (F.t[i]->nseg && !F.t[i]->gone)
				pf[n] = (struct pollfd){ F.t[i]->uffd, POLLIN, 0 }, of[n++] = F.t[i];
		if (poll(pf, n, n ? -1 : 1000) < 0 && errno != EINTR)
			fail("lazy restore: poll: %s; the restored processes were killed", strerror(errno));
		for (size_t i = 0; i < n; i++) {
			if (!pf[i].revents)
				continue;
			if (of[i]) {
				read_uffd(of[i]);
				continue;
			}
			int r = read_sock(sock);
			if (r < 0 && !F.go) {
				/* the restore failed: it kills the tree */
				lazy_warden_release(F.warden, F.warden_pid, false);
				_exit(0);
			}
			if (r < 0)
				close(sock), sock = -1;
			if (r == 1) {
				need_workers();
				pthread_mutex_lock(&F.lock);
				F.go = true;
				pthread_cond_broadcast(&F.cond);
				pthread_mutex_unlock(&F.lock);
			}
		}
	}
}

void lazy_fill_main(int sock, struct restore_stats *st)
{
	F.st = st;
	/* Before any thread: the warden is a fork of this process. */
	F.warden = lazy_warden_start(st, sock, &F.warden_pid);
	if (F.warden < 0)
		fail("lazy restore: cannot start the filler's warden: %s", strerror(-F.warden));
	serve(sock);
	_exit(0);
}
