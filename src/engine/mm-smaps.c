/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /proc/PID/smaps read by a thread while the frozen dump goes on (mm.h).
 * Only smaps says a mapping's VmFlags (MADV_DONTFORK, MADV_HUGEPAGE,
 * mlock, ...) and its huge pages, and reading it walks every page table
 * of every mapping: ~7-13 ms for 1 GiB here, the biggest single step of
 * a final dump with --parent. Reading it before the freeze would miss a
 * whole-mapping madvise() made meanwhile, which changes VmFlags and
 * nothing in /proc/PID/maps. So the mappings come from maps (no page
 * walk) while frozen, and smaps, read while frozen too but beside the
 * remote calls and the copy, adds what only it knows before the records
 * are written. Both are read while the tree is frozen: they differ only
 * by our own trap page and scratch area, mapped by the remote calls.
 * The thread starts after the remote calls that take the process's
 * mmap lock for writing (dump.c), which would wait for the walk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/mm.h"
#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

struct mm_smaps {
	pthread_t thread;
	int procfd; /* ours: the dump's may close first */
	char *buf;
	size_t len;
	int err;
	uint64_t ns; /* how long the read took */
};

static void *smaps_main(void *arg)
{
	struct mm_smaps *s = arg;
	uint64_t t0 = now_ns();
	s->err = proc_read(s->procfd, "smaps", &s->buf, &s->len);
	s->ns = now_ns() - t0;
	return NULL;
}

int mm_smaps_start(int procfd, struct mm_rec *m)
{
	struct mm_smaps *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	(void)mm_guards_known(); /* its probe, once, before the copy's thread asks too */
	s->procfd = fcntl(procfd, F_DUPFD_CLOEXEC, 3);
	int r = s->procfd < 0 ? -errno : -pthread_create(&s->thread, NULL, smaps_main, s);
	if (r < 0) {
		if (s->procfd >= 0)
			close(s->procfd);
		free(s);
		return r;
	}
	m->smaps = s;
	return 0;
}

/* Waits for the read; the caller owns s->buf after. */
static void smaps_wait(struct mm_smaps *s)
{
	pthread_join(s->thread, NULL);
	close(s->procfd);
}

void mm_smaps_cancel(struct mm_rec *m)
{
	if (!m->smaps)
		return;
	smaps_wait(m->smaps);
	free(m->smaps->buf);
	free(m->smaps);
	m->smaps = NULL;
}

/* Inside one of [a1, a1+l1) and [a2, a2+l2), our own areas. */
static bool ours(uint64_t start, uint64_t end, uint64_t a1, uint64_t l1, uint64_t a2, uint64_t l2)
{
	return (a1 && start >= a1 && end <= a1 + l1) || (a2 && start >= a2 && end <= a2 + l2);
}

/* The smaps entry covering rec, all of whose excess is ours (our areas
 * keep a page away from the process's mappings, mm_find_gap(), so the
 * kernel never merges them: equal ranges in practice). */
static const struct vma *covering(const struct vma *v, size_t n, size_t *k, const struct vma_rec *rec,
				  const struct remote *r)
{
	while (*k < n && v[*k].end <= rec->start)
		(*k)++;
	if (*k == n || v[*k].start > rec->start || v[*k].end < rec->end)
		return NULL;
	const struct vma *e = &v[*k];
	bool below = e->start == rec->start || ours(e->start, rec->start, r->trap, TRAP_LEN, r->scratch, r->scratch_len);
	bool above = e->end == rec->end || ours(rec->end, e->end, r->trap, TRAP_LEN, r->scratch, r->scratch_len);
	return below && above ? e : NULL;
}

static int merge(pid_t pid, struct mm_rec *m, const struct vma *v, size_t n, const struct remote *r)
{
	size_t k = 0;
	for (size_t i = 0; i < m->nvmas; i++) {
		struct vma_rec *rec = &m->vmas[i];
		const struct vma *e = covering(v, n, &k, rec, r);
		if (!e)
			return log_error_errno(-EAGAIN, "pid %d: mapping %#" PRIx64 "-%#" PRIx64 " changed while the "
					       "process was frozen; dump it again", pid, rec->start, rec->end);
		bool special = rec->kind == VMA_VDSO || rec->kind == VMA_VVAR || rec->kind == VMA_VVAR_VCLOCK;
		if ((e->vmflags & (VMF_IO | VMF_PFNMAP)) && !special) /* as classify() refuses them */
			return log_error_errno(-EOPNOTSUPP, "pid %d: mapping %#" PRIx64 "-%#" PRIx64 " (%s) cannot be "
					       "checkpointed yet: device and special mappings are not supported",
					       pid, rec->start, rec->end, *e->path ? e->path : "anonymous");
		rec->vmflags = e->vmflags;
		rec->thp = e->thp_kb << 10;
	}
	return 0;
}

int mm_smaps_join(pid_t pid, struct mm_rec *m, const struct remote *r)
{
	struct mm_smaps *s = m->smaps;
	if (!s)
		return 0;
	smaps_wait(s);
	m->smaps = NULL;
	_cleanup_free_ struct mm_smaps *own = s;
	_cleanup_free_ char *buf = s->buf;
	struct vma *v = NULL;
	size_t n = 0;
	int e = s->err < 0 ? s->err : proc_parse_smaps(buf, s->len, &v, &n);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot read smaps: %m", pid);
	log_debug("pid %d: smaps read beside the dump in %.1f ms", pid, (double)s->ns / 1e6);
	e = merge(pid, m, v, n, r);
	vmas_free(v, n);
	return e;
}
