/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Page data of a restore, written by worker threads (mm-fill.h). The
 * tracer makes a process's mappings through remote syscalls and queues
 * its pages; a worker reads the page file into its own buffer, checksums
 * what it read (no second read to verify it) and scatters it into the
 * process with process_vm_writev, which lets the kernel allocate each
 * page as it writes it. So the pages of several processes go in at once
 * while the tracer makes the next process. Copying through a buffer of
 * ours costs one copy more than the process reading its own pages
 * (mm_restore_pages), but no remote syscalls, and on these machines a
 * process's first touch of a fresh 4 KiB page costs far more than the
 * copy (DESIGN.md §7): the buffer is one huge page, touched once per
 * worker; mapping the page file instead costs a slow first touch of each
 * of its pages here (measured: 0.47 s per GiB against 0.15 s for pread).
 *
 * A page file with block checksums (pagesums.h) is filled in chunks that
 * are checked on their own, by every worker that is free: one large
 * process uses every core, and a damaged chunk is never written. Reading,
 * checking and writing 1 GiB costs about 0.45 s of CPU here, the writing
 * (page allocation in the target) half of it, so one core cannot come
 * near memcpy speed. Files without block checksums (older images) and
 * compressed ones are filled by one worker, in order. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "engine/mm-fill.h"
#include "engine/predump.h"
#include "image/pagesums.h"
#include "util/cleanup.h"
#include "util/inject.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

#define FILL_BUF (4u << 20)
#define HUGE_PAGE (2u << 20)
#define FILL_IOV 1024
#define MAX_THREADS 64u

/* Where the next chunk starts: run i of the index, bytes of it done. */
struct cursor {
	size_t i;
	uint64_t done;
};

struct fill_job {
	struct fill_job *next, *all_next;
	struct image *img;
	struct remote *r;
	const struct mm_rec *m;
	int uffd; /* >= 0: the workers fill through it (mm-fill-uffd.c) */
	bool done;
	int result;
	/* Filled in chunks (under the pool's lock): */
	struct fill_job *open_next; /* on the pool's list while chunks are left */
	const struct mm_pages *mp;
	struct pagesums ps;
	struct cursor cur; /* the next chunk to hand out */
	uint64_t off;      /* its offset in the page file */
	unsigned active;   /* workers filling a chunk of it */
	int err;           /* the first chunk's error; logged once */
	uint64_t ns[3];    /* read, check, write: summed over its chunks (-v) */
};

struct fill_pool {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct fill_job *head, *tail; /* queued */
	struct fill_job *all;         /* every job, freed with the pool */
	struct fill_job *open;        /* jobs with chunks to hand out */
	pthread_t threads[MAX_THREADS];
	unsigned n;
	bool stop;
	bool cancel; /* read by workers between chunks: atomic */
};

struct worker {
	struct fill_pool *pool;
	uint8_t *buf;
	void *map;
};

unsigned fill_threads_wanted(size_t nproc)
{
	uint64_t n = env_count_or_cpus("STASIS_FILL_THREADS", "threads");
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	return nproc ? (unsigned)n : 0;
}

/* One huge page where the kernel gives one (our own memory: its flags
 * are ours to choose), else small pages; made on the first job only. */
static int worker_buf(struct worker *w)
{
	if (w->buf)
		return 0;
	void *map = mmap(NULL, FILL_BUF + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	w->map = map;
	w->buf = (uint8_t *)(((uintptr_t)map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	(void)madvise(w->buf, FILL_BUF, MADV_HUGEPAGE);
	return 0;
}

/* The next chunk of the page file, as the runs of memory it goes to. */
static size_t gather(const struct mm_pages *mp, struct cursor *c, struct iovec *rem, size_t *ret_len)
{
	size_t k = 0, len = 0;
	while (c->i < mp->n && k < FILL_IOV && len < FILL_BUF) {
		const struct pagemap_entry *e = &mp->pm[c->i];
		uint64_t left = e->nr_pages * PAGE_SIZE - c->done;
		uint64_t take = left < FILL_BUF - len ? left : FILL_BUF - len;
		rem[k++] = (struct iovec){ (void *)(uintptr_t)(e->vaddr + c->done), (size_t)take };
		len += take;
		c->done += take;
		if (c->done == e->nr_pages * PAGE_SIZE)
			c->i++, c->done = 0;
	}
	*ret_len = len;
	return k;
}

/* With process_vm_writev; through /proc/PID/mem where it may not be used (a
 * seccomp filter, a kernel without it). Not logged: *at says where. */
int fill_write_in(struct remote *r, const uint8_t *buf, size_t len, const struct iovec *rem, size_t k, void **at)
{
	struct iovec local = { (void *)buf, len };
	ssize_t n = process_vm_writev(r->pid, &local, 1, rem, k, 0);
	int e = n < 0 ? -errno : (size_t)n == len ? 0 : -EFAULT;
	*at = rem[0].iov_base;
	if (e < 0 && e != -EPERM && e != -ENOSYS)
		return e;
	for (size_t q = 0; e < 0 && q < k; q++) {
		int w = remote_write(r, (uint64_t)(uintptr_t)rem[q].iov_base, buf, rem[q].iov_len);
		*at = rem[q].iov_base;
		if (w < 0)
			return w;
		buf += rem[q].iov_len;
	}
	return 0;
}

/* Through the job's userfaultfd where it has one (mm-fill-uffd.c). */
static int write_in(const struct fill_job *j, const uint8_t *buf, size_t len, const struct iovec *rem, size_t k,
		    void **at)
{
	if (j->uffd >= 0)
		return fill_uffd_put(j->uffd, j->r, j->m, buf, rem, k, at);
	return fill_write_in(j->r, buf, len, rem, k, at);
}

static bool cancelled(const struct worker *w)
{
	return __atomic_load_n(&w->pool->cancel, __ATOMIC_RELAXED);
}

/* The page file, in order, chunk by chunk: read, checksummed, written. */
static int fill_plain(struct worker *w, struct fill_job *j, const struct mm_pages *mp)
{
	struct image_check *ck = NULL;
	struct cursor cur = { 0 };
	uint64_t off = 0;
	int e = image_check_open(j->img, mp->name, &ck);
	if (e >= 0 && mp->n && (e = worker_buf(w)) < 0)
		log_error_errno(e, "pid %d: cannot make a buffer to fill its memory: %m", j->r->pid);
	while (e >= 0 && cur.i < mp->n) {
		struct iovec rem[FILL_IOV];
		size_t len, k = gather(mp, &cur, rem, &len);
		void *at;
		if (cancelled(w))
			e = -ECANCELED;
		else if ((e = pread_exact(mp->fd, w->buf, len, (off_t)off)) < 0)
			log_error_errno(e, "cannot read image file '%s': %m", mp->name);
		else if ((e = write_in(j, w->buf, len, rem, k, &at)) < 0)
			log_error_errno(e, "pid %d: cannot write its memory at %p: %m", j->r->pid, at);
		else
			image_check_add(ck, w->buf, len);
		off += len;
		if (e >= 0)
			progress_add(len);
	}
	if (e >= 0)
		e = image_check_end(ck);
	image_check_free(ck);
	return e;
}

/* The block checksums of the page file, where the image has them. */
static int load_sums(struct fill_job *j, const struct mm_pages *mp)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *buf = NULL;
	uint64_t size = j->m->pages * PAGE_SIZE;
	size_t len;
	/* One chunk: nothing to share out, and one image file less to read. */
	if (size <= FILL_BUF || !image_has(j->img, image_name_pagesums(name, j->r->pid)))
		return 0;
	int e = image_get(j->img, name, pagesums_max_len(size), &buf, &len);
	if (e < 0)
		return e;
	if (pagesums_decode(buf, len, size, &j->ps) < 0)
		return log_error_errno(-EBADMSG, "image file '%s' is damaged: bad block checksums", name);
	/* A chunk must be whole blocks: they are never larger than one. */
	return mp->n && j->ps.shift <= PAGESUMS_BATCH_SHIFT && FILL_BUF % (1u << j->ps.shift) == 0;
}

/* What went wrong with a chunk, logged by help() for the first only. */
enum chunk_stage { CHUNK_BUF, CHUNK_READ, CHUNK_CHECK, CHUNK_WRITE };
struct chunk_err {
	enum chunk_stage stage;
	uint64_t bad; /* CHUNK_CHECK: the block */
	void *at;     /* CHUNK_WRITE: the address */
};

/* One chunk: read, checked, written (ns: the time each took). Lock not
 * held. */
static int fill_chunk(struct worker *w, struct fill_job *j, const struct iovec *rem, size_t k, uint64_t off,
		      size_t len, struct chunk_err *ce, uint64_t ns[3])
{
	uint64_t t0 = now_ns(), t1, t2;
	int e;
	if ((ce->stage = CHUNK_BUF, e = worker_buf(w)) < 0 ||
	    (ce->stage = CHUNK_READ, e = pread_exact(j->mp->fd, w->buf, len, (off_t)off)) < 0)
		return e;
	ns[0] = (t1 = now_ns()) - t0;
	if (pagesums_check(&j->ps, off, w->buf, len, &ce->bad) < 0)
		return ce->stage = CHUNK_CHECK, -EBADMSG;
	ns[1] = (t2 = now_ns()) - t1;
	if ((ce->stage = CHUNK_WRITE, e = write_in(j, w->buf, len, rem, k, &ce->at)) < 0)
		return e;
	ns[2] = now_ns() - t2;
	progress_add(len);
	return 0;
}

static int chunk_log(const struct fill_job *j, int e, const struct chunk_err *ce)
{
	const char *name = j->mp->name;
	switch (ce->stage) {
	case CHUNK_BUF:
		return log_error_errno(e, "pid %d: cannot make a buffer to fill its memory: %m", j->r->pid);
	case CHUNK_READ:
		return log_error_errno(e, "cannot read image file '%s': %m", name);
	case CHUNK_CHECK:
		return log_error_errno(e, "image file '%s' in %s is damaged: checksum mismatch in bytes %" PRIu64 "+%u",
				       name, image_dir(j->img), ce->bad << j->ps.shift, 1u << j->ps.shift);
	default:
		return log_error_errno(e, "pid %d: cannot write its memory at %p: %m", j->r->pid, ce->at);
	}
}

static void open_remove(struct fill_pool *p, struct fill_job *j)
{
	for (struct fill_job **q = &p->open; *q; q = &(*q)->open_next)
		if (*q == j) {
			*q = j->open_next;
			return;
		}
}

/* Lock held. Fills chunks of j while it has some; only the first error
 * is logged (the others are most likely its consequences). */
static void help(struct worker *w, struct fill_pool *p, struct fill_job *j)
{
	while (j->cur.i < j->mp->n && !j->err) {
		struct iovec rem[FILL_IOV];
		struct chunk_err ce = { 0 };
		uint64_t off = j->off, ns[3] = { 0 };
		size_t len, k = gather(j->mp, &j->cur, rem, &len);
		j->off += len;
		j->active++;
		pthread_mutex_unlock(&p->lock);
		int e = cancelled(w) ? -ECANCELED : fill_chunk(w, j, rem, k, off, len, &ce, ns);
		pthread_mutex_lock(&p->lock);
		for (int q = 0; q < 3; q++)
			j->ns[q] += ns[q];
		if (e < 0 && !j->err)
			j->err = e == -ECANCELED ? e : chunk_log(j, e, &ce);
		if (!--j->active)
			pthread_cond_broadcast(&p->done);
	}
	open_remove(p, j);
}

/* The page file in chunks by every free worker, this one too. */
static int fill_split(struct worker *w, struct fill_job *j, const struct mm_pages *mp)
{
	struct fill_pool *p = w->pool;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&p->lock);
	j->mp = mp;
	j->open_next = p->open;
	p->open = j;
	pthread_cond_broadcast(&p->work);
	help(w, p, j);
	while (j->active)
		pthread_cond_wait(&p->done, &p->lock);
	int e = j->err;
	pthread_mutex_unlock(&p->lock);
	log_debug("pid %d: %" PRIu64 " MiB of pages in %.1f ms (workers' time: read %.1f, check %.1f, %s %.1f ms)",
		  j->r->pid, (j->m->pages * PAGE_SIZE) >> 20, (double)(now_ns() - t0) / 1e6, (double)j->ns[0] / 1e6,
		  (double)j->ns[1] / 1e6, j->uffd >= 0 ? "UFFDIO_COPY" : "process_vm_writev", (double)j->ns[2] / 1e6);
	return e;
}

static int run_job(struct worker *w, struct fill_job *j)
{
	struct mm_pages mp = { .fd = -1 };
	int e = inject_fail("restore:fill");
	if (e >= 0 && (e = mm_pages_open(j->img, j->m, j->r->pid, &mp)) >= 0 && mp.zstd) {
		/* Written through /proc/PID/mem: nothing may be registered. */
		fill_uffd_release(j->uffd, j->m);
		j->uffd = -1;
		e = mp.n ? mm_fill_zstd(j->r, j->img, mp.name, mp.pm, mp.n) : 0;
	}
	else if (e >= 0 && (e = load_sums(j, &mp)) >= 0)
		e = e ? fill_split(w, j, &mp) : fill_plain(w, j, &mp);
	mm_pages_close(&mp);
	free(j->ps.sums);
	j->ps.sums = NULL;
	if (e >= 0 && j->uffd >= 0)
		e = inject_fail("restore:fill-uffd"); /* while registered */
	fill_uffd_release(j->uffd, j->m);
	j->uffd = -1;
	if (e >= 0 && !cancelled(w))
		e = predump_restore_chain(j->r, j->img, j->m);
	return e;
}

static void *worker_main(void *arg)
{
	struct worker w = { .pool = arg };
	struct fill_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* Chunks of a process being filled first: it is done sooner. */
		if (p->open) {
			help(&w, p, p->open);
			continue;
		}
		if (!p->head && !p->stop) {
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		struct fill_job *j = p->head;
		if (!j)
			break;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		int r = cancelled(&w) ? -ECANCELED : run_job(&w, j);
		pthread_mutex_lock(&p->lock);
		j->result = r;
		j->done = true;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	if (w.map)
		munmap(w.map, FILL_BUF + HUGE_PAGE);
	return NULL;
}

static void pool_free(struct fill_pool *p)
{
	for (struct fill_job *j = p->all, *next; j; j = next) {
		next = j->all_next;
		fill_uffd_release(j->uffd, j->m); /* a job dropped unrun */
		free(j);
	}
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int pool_init(struct fill_pool *p)
{
	pthread_condattr_t a;
	if (pthread_condattr_init(&a) != 0)
		return -ENOMEM;
	/* fill_wait wakes up on a monotonic clock to show progress. */
	int r = -pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (r >= 0)
		r = -pthread_mutex_init(&p->lock, NULL);
	if (r >= 0 && (r = -pthread_cond_init(&p->work, NULL)) >= 0)
		r = -pthread_cond_init(&p->done, &a);
	pthread_condattr_destroy(&a);
	return r;
}

int fill_pool_start(unsigned nthreads, struct fill_pool **ret)
{
	struct fill_pool *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int r = p ? pool_init(p) : -ENOMEM;
	if (r < 0) {
		free(p);
		return log_error_errno(r, "cannot start the threads that fill memory: %m");
	}
	/* Signals are the tracer's business (util/interrupt.h): the workers
	 * block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->n < nthreads && p->n < MAX_THREADS && r >= 0; p->n++)
		if ((r = -pthread_create(&p->threads[p->n], NULL, worker_main, p)) < 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		fill_pool_stop(p, true);
		return log_error_errno(r, "cannot start the threads that fill memory: %m");
	}
	*ret = p;
	return 0;
}

int fill_submit(struct fill_pool *p, struct image *img, struct remote *r, const struct mm_rec *m, int uffd,
		struct fill_job **ret)
{
	struct fill_job *j = calloc(1, sizeof(*j));
	if (!j) {
		fill_uffd_release(uffd, m);
		return -ENOMEM;
	}
	*j = (struct fill_job){ .img = img, .r = r, .m = m, .uffd = uffd };
	pthread_mutex_lock(&p->lock);
	j->all_next = p->all;
	p->all = j;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	*ret = j;
	return 0;
}

int fill_wait(struct fill_pool *p, struct fill_job *j)
{
	pthread_mutex_lock(&p->lock);
	while (!j->done) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000)
			ts.tv_sec++, ts.tv_nsec -= 1000000000;
		pthread_cond_timedwait(&p->done, &p->lock, &ts);
		progress_add(0); /* the workers' bytes, shown by us */
	}
	int r = j->result;
	pthread_mutex_unlock(&p->lock);
	return r;
}

void fill_pool_cancel(struct fill_pool *p)
{
	if (p)
		__atomic_store_n(&p->cancel, true, __ATOMIC_RELAXED);
}

void fill_pool_stop(struct fill_pool *p, bool cancel)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	if (cancel)
		__atomic_store_n(&p->cancel, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pool_free(p);
}
