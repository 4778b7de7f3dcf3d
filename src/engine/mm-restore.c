/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restore side of the address space, run through remote syscalls in the
 * stub: clear the stub's own mappings, move vdso/vvar to their old
 * addresses, recreate every mapping, then set the mm fields. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <xxhash.h>

#include "engine/fdpass.h"
#include "engine/fsroot.h"
#include "engine/ipc.h"
#include "engine/mm.h"
#include "engine/remote-batch.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static bool is_special(enum vma_kind k)
{
	return k == VMA_VDSO || k == VMA_VVAR || k == VMA_VVAR_VCLOCK;
}

/* Our own special mappings: the restorer runs on the same kernel as the
 * stub, so they tell what the stub has. */
static int own_specials(struct vma **ret, size_t *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file_at(AT_FDCWD, "/proc/self/maps", PROC_MAX_FILE, &buf, &len);
	if (r < 0)
		return r;
	return proc_parse_smaps(buf, len, ret, ret_n);
}

static const char *special_name(enum vma_kind k)
{
	return k == VMA_VDSO ? "[vdso]" : k == VMA_VVAR ? "[vvar]" : "[vvar_vclock]";
}

/* A mapping of the stub's that the kernel made: the vdso and its data. */
static bool is_special_path(const char *path)
{
	return streq(path, "[vdso]") || streq(path, "[vvar]") || streq(path, "[vvar_vclock]");
}

static int check_specials(const struct mm_rec *m)
{
	struct vma *own;
	size_t n;
	int r = own_specials(&own, &n);
	if (r < 0)
		return log_error_errno(r, "cannot read /proc/self/maps: %m");
	for (size_t i = 0; i < m->nvmas && r >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!is_special(v->kind))
			continue;
		const struct vma *o = NULL;
		for (size_t k = 0; k < n; k++)
			if (streq(own[k].path, special_name(v->kind)))
				o = &own[k];
		if (!o || o->end - o->start != v->end - v->start)
			r = log_error_errno(-EOPNOTSUPP, "the image's %s (%" PRIu64 " bytes) does not match this kernel's; "
					    "restore on the kernel the image was made on",
					    special_name(v->kind), v->end - v->start);
		else if (v->kind == VMA_VDSO && XXH3_64bits((void *)o->start, o->end - o->start) != m->vdso_hash)
			r = log_error_errno(-EOPNOTSUPP, "the image's vdso differs from this kernel's; restore on "
					    "the kernel the image was made on");
	}
	vmas_free(own, n);
	return r;
}

int mm_check_restorable(const struct mm_rec *m, const char *fsroot)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		struct stat st;
		char p[PATH_MAX + 64];
		if (v->kind != VMA_FILE)
			continue;
		if (!fsroot_path(fsroot, v->path, p, sizeof(p)) || stat(p, &st) < 0)
			return log_error_errno(-errno, "mapped file %s is not available here: %m", v->path);
		int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		if ((uint64_t)st.st_size != v->fsize || mt != v->mtime_ns)
			return log_error_errno(-ESTALE, "mapped file %s changed since the checkpoint (size or mtime "
					       "differ); the process would see a different file", v->path);
	}
	return check_specials(m);
}

struct range {
	uint64_t start, end;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int mm_find_gap(const struct mm_rec *m, const struct vma *cur, size_t ncur, uint64_t len, uint64_t *ret)
{
	size_t n = m->nvmas + ncur;
	_cleanup_free_ struct range *rs = calloc(n + 1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	for (size_t i = 0; i < m->nvmas; i++)
		rs[i] = (struct range){ m->vmas[i].start, m->vmas[i].end };
	for (size_t i = 0; i < ncur; i++)
		rs[m->nvmas + i] = (struct range){ cur[i].start, cur[i].end };
	qsort(rs, n, sizeof(*rs), cmp_range);
	/* Leave a guard page around the gap; start above 4 GiB where no
	 * non-PIE binary or its brk heap lives. */
	uint64_t at = 1ULL << 32;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].end + PAGE_SIZE <= at)
			continue;
		if (rs[i].start >= at + len + PAGE_SIZE)
			break;
		at = rs[i].end + PAGE_SIZE;
	}
	if (at + len > (1ULL << 47) - (1ULL << 32))
		return -ENOMEM;
	*ret = at;
	return 0;
}

/* A batched call's tag: what it is for in its top 8 bits, the index of
 * the mapping it concerns below; a failure names that mapping. */
#define TAG_IDX ((1u << 24) - 1)
/* Tags of the calls that clear the stub (in one batch): */
#define CLR_UNMAP 0u        /* parking or unmapping */
#define CLR_MOVE (1u << 24) /* | k: cur[k] to its place */
#define CLR_DROP (2u << 24) /* | k: cur[k], which the process did not have */

static int clr_call(struct rbatch *b, uint32_t tag, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		    uint64_t a4)
{
	int e = rbatch_reserve(b, 1, 0);
	if (e >= 0)
		rbatch_add(b, tag, 0, nr, a0, a1, a2, a3, a4, 0);
	return e;
}

/* Unmaps [start, end) of the stub but the mappings it keeps from its
 * parent (mm-cow.c); vmas are sorted, kept ones are few. */
static int unmap_but_kept(struct rbatch *b, const struct mm_rec *m, uint64_t start, uint64_t end)
{
	int e = 0;
	for (size_t i = 0; m->nrefs && i < m->nvmas && start < end && e >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!v->keep || v->end <= start)
			continue;
		if (v->start >= end)
			break;
		if (v->start > start)
			e = clr_call(b, CLR_UNMAP, SYS_munmap, start, v->start - start, 0, 0, 0);
		start = v->end;
	}
	if (e >= 0 && start < end)
		e = clr_call(b, CLR_UNMAP, SYS_munmap, start, end - start, 0, 0, 0);
	return e;
}

static int rmremap(struct rbatch *b, uint32_t tag, uint64_t from, uint64_t len, uint64_t to)
{
	return clr_call(b, tag, SYS_mremap, from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
}


static bool has_special(const struct mm_rec *m, const char *path)
{
	for (size_t i = 0; i < m->nvmas; i++)
		if (is_special(m->vmas[i].kind) && streq(special_name(m->vmas[i].kind), path))
			return true;
	return false;
}
/* Parks vdso & co. at tmp and unmaps the stub's other mappings but the
 * scratch and the kept ones. Neighbouring mappings go in one munmap (a
 * child forked from a restored parent has all of its mappings), never
 * reaching over the parking place. The calls go into b: the scratch area,
 * which runs them, stays. */
static int park_and_unmap(struct rbatch *b, const struct mm_rec *m, struct vma *cur, size_t ncur, uint64_t tmp)
{
	const uint64_t park_end = tmp + (64 << 20);
	uint64_t from = 0, to = 0;
	int e = 0;
	for (size_t i = 0; i < ncur && e >= 0; i++) {
		struct vma *c = &cur[i];
		bool special = is_special_path(c->path);
		bool stays = c->start == b->r->scratch || streq(c->path, "[vsyscall]");
		if (!special && !stays && to && (to >= park_end || c->start <= tmp)) {
			to = c->end; /* joins the range */
			continue;
		}
		if (to)
			e = unmap_but_kept(b, m, from, to);
		from = to = 0;
		if (e >= 0 && special) {
			uint64_t at = tmp + (c->start & ((32 << 20) - 1));
			e = rmremap(b, CLR_UNMAP, c->start, c->end - c->start, at);
			c->end = at + (c->end - c->start);
			c->start = at;
		} else if (!stays) {
			from = c->start, to = c->end;
		}
	}
	if (e >= 0 && to)
		e = unmap_but_kept(b, m, from, to);
	return e;
}

/* vdso & co. to their places; what the program had unmapped itself (a
 * vdso-less program) goes. */
static int place_specials(struct rbatch *b, const struct mm_rec *m, const struct vma *cur, size_t ncur)
{
	int e = 0;
	for (size_t i = 0; i < m->nvmas && e >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		for (size_t k = 0; is_special(v->kind) && k < ncur && e >= 0; k++)
			if (streq(cur[k].path, special_name(v->kind)))
				e = rmremap(b, CLR_MOVE | (uint32_t)k, cur[k].start, v->end - v->start, v->start);
	}
	for (size_t k = 0; k < ncur && e >= 0; k++) {
		if (is_special_path(cur[k].path) && !has_special(m, cur[k].path))
			e = clr_call(b, CLR_DROP | (uint32_t)k, SYS_munmap, cur[k].start, cur[k].end - cur[k].start, 0, 0,
				     0);
	}
	return e;
}

static int clear_failed(pid_t pid, const struct rbatch *b, const struct vma *cur, int e)
{
	uint32_t tag = rbatch_failed_tag(b, CLR_UNMAP);
	const struct vma *c = &cur[tag & TAG_IDX];
	if ((tag & ~TAG_IDX) == CLR_MOVE)
		return log_error_errno(e, "pid %d: cannot move %s to %" PRIx64 ": %m", pid, c->path,
				       b->calls[b->failed].a[4]);
	if ((tag & ~TAG_IDX) == CLR_DROP)
		return log_error_errno(e, "pid %d: cannot remove %s, which it did not have: %m", pid, c->path);
	return log_error_errno(e, "pid %d: cannot clear the stub's mappings: %m", pid);
}

int mm_clear_stub(struct remote *r, pid_t tid, const struct mm_rec *m, int procfd)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	struct vma *cur = NULL;
	size_t len, ncur = 0;
	uint64_t tmp;
	int e;

	if (!b)
		return -ENOMEM;
	if ((e = proc_read(procfd, "maps", &buf, &len)) < 0 || (e = proc_parse_smaps(buf, len, &cur, &ncur)) < 0)
		return log_error_errno(e, "pid %d: cannot read the stub's mappings: %m", r->pid);
	/* Park vdso & co. in a free place first: their final addresses may be
	 * where the stub's own mappings are now. */
	rbatch_begin(b, r, tid);
	if ((e = mm_find_gap(m, cur, ncur, 64 << 20, &tmp)) >= 0 &&
	    ((e = park_and_unmap(b, m, cur, ncur, tmp)) < 0 || (e = place_specials(b, m, cur, ncur)) < 0 ||
	     (e = rbatch_run(b)) < 0))
		e = clear_failed(r->pid, b, cur, e);
	vmas_free(cur, ncur);
	return e < 0 ? e : 0;
}

static bool has_pages(const struct vma_rec *v)
{
	return v->kind == VMA_ANON || ((v->kind == VMA_FILE || v->kind == VMA_SHMEM) && !v->shared);
}

/* The prot a mapping is created with: writable while pages are filled
 * (by the process itself, or by process_vm_writev, which respects it). */
static uint32_t fill_prot(const struct vma_rec *v)
{
	return has_pages(v) && v->filled ? v->prot | PROT_READ | PROT_WRITE : v->prot;
}

static int map_flags(const struct vma_rec *v)
{
	int flags = MAP_FIXED | (v->shared ? MAP_SHARED : MAP_PRIVATE);
	if (v->kind != VMA_FILE && v->kind != VMA_SHMEM)
		flags |= MAP_ANONYMOUS;
	if (v->vmflags & VMF_GROWSDOWN)
		flags |= MAP_GROWSDOWN;
	if (v->vmflags & VMF_NORESERVE)
		flags |= MAP_NORESERVE;
	return flags;
}

static long map_one(struct remote *r, pid_t tid, const struct vma_rec *v, long fd)
{
	long ret = remote_syscall(r, tid, SYS_mmap, v->start, v->end - v->start, fill_prot(v), map_flags(v), fd,
				  v->pgoff);
	if (ret < 0 && ret > -4096)
		return ret;
	return (uint64_t)ret == v->start ? 0 : -EFAULT;
}

static const struct {
	uint32_t flag;
	int advice;
} advices[] = {
	{ VMF_HUGEPAGE, MADV_HUGEPAGE }, { VMF_NOHUGEPAGE, MADV_NOHUGEPAGE }, { VMF_DONTDUMP, MADV_DONTDUMP },
	{ VMF_DONTCOPY, MADV_DONTFORK }, { VMF_WIPEONFORK, MADV_WIPEONFORK }, { VMF_MERGEABLE, MADV_MERGEABLE },
};
#define NADVICES (sizeof(advices) / sizeof(advices[0]))

static int file_flags(const struct vma_rec *v)
{
	return (v->shared && (v->vmflags & VMF_MAYWRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
}

/* The restorer makes the object (once for the whole tree) and passes it in. */
static long map_shmem(struct remote *r, pid_t tid, const struct vma_rec *v, struct files_ctx *fc, int tfd)
{
	int ours = shobj_get(fc, v->path, &v->obj);
	if (ours < 0)
		return ours;
	/* A private mapping holds a read-only open, as the original's did:
	 * a writer would keep a deleted executable from being the exe. */
	_cleanup_close_ int ro = v->shared ? -1 : shobj_reopen_ro(ours);
	if (!v->shared && ro < 0)
		return ro;
	long fd = fdpass_push(r, tid, fc->ctl, tfd, v->shared ? ours : ro);
	if (fd < 0)
		return fd;
	long ret = map_one(r, tid, v, fd);
	remote_syscall(r, tid, SYS_close, fd);
	return ret;
}

/* The mappings are made in batches (remote-batch.h): first every mapped
 * file is opened (once for a run of mappings of one file), then the
 * mappings and their madvise calls go, then the files are closed. Tags
 * say which mapping a call is for: */
#define TAG_MAP (0u << 24)    /* | i */
#define TAG_ADVISE (1u << 24) /* | i; a[2] the advice */
#define TAG_OPEN (2u << 24)   /* | i */

static bool is_file(const struct vma_rec *v)
{
	return v->kind == VMA_FILE && !v->keep; /* a kept one is there, its file with it */
}

/* Runs the opens in b; fds[i] gets the fd of vma i's open. */
static int run_opens(struct rbatch *b, const struct mm_rec *m, long *fds)
{
	size_t n = b->n;
	int e = rbatch_run(b);
	for (size_t k = 0; k < n && k != b->failed; k++)
		fds[b->calls[k].tag & TAG_IDX] = b->calls[k].ret;
	if (e < 0 && b->failed != RBATCH_NONE)
		return log_error_errno(e, "pid %d: cannot open mapped file %s: %m", b->r->pid,
				       m->vmas[b->calls[b->failed].tag & TAG_IDX].path);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot open its mapped files: %m", b->r->pid);
	return 0;
}

/* fds[i]: the fd in the task for vma i, -1 for none. The path from /proc
 * is resolved: a symlink there now is not the file that was mapped. */
static int open_files(struct rbatch *b, const struct mm_rec *m, long *fds)
{
	size_t prev = SIZE_MAX;
	int e;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i], *p = prev == SIZE_MAX ? NULL : &m->vmas[prev];
		fds[i] = -1;
		if (!is_file(v))
			continue;
		size_t len = strlen(v->path) + 1;
		if (p && streq(p->path, v->path) && file_flags(p) == file_flags(v)) {
			fds[i] = -2 - (long)prev; /* that one's, below */
			prev = i;
			continue;
		}
		prev = i;
		if (!rbatch_room(b, 1, len) && (e = run_opens(b, m, fds)) < 0)
			return e;
		rbatch_call(b, TAG_OPEN | (uint32_t)i, 0, SYS_openat, AT_FDCWD, rbatch_data(b, v->path, len),
			    file_flags(v) | O_NOFOLLOW, 0);
	}
	if (b->n && (e = run_opens(b, m, fds)) < 0)
		return e;
	for (size_t i = 0; i < m->nvmas; i++)
		if (fds[i] <= -2)
			fds[i] = fds[-2 - fds[i]];
	return 0;
}

static int map_failed(const struct rbatch *b, const struct mm_rec *m, size_t i, int e)
{
	const struct vma_rec *v = &m->vmas[i];
	if (i == SIZE_MAX)
		return log_error_errno(e, "pid %d: cannot make its mappings: %m", b->r->pid);
	return log_error_errno(e, "pid %d: cannot map %" PRIx64 "-%" PRIx64 " (%s): %m", b->r->pid, v->start, v->end,
			       v->path ? v->path : "anonymous");
}

/* Runs the mapping calls in b and looks at what they returned. */
static int run_maps(struct rbatch *b, const struct mm_rec *m)
{
	size_t n = b->n;
	int e = rbatch_run(b);
	if (e < 0)
		return map_failed(b, m, b->failed == RBATCH_NONE ? SIZE_MAX : b->calls[b->failed].tag & TAG_IDX, e);
	for (size_t k = 0; k < n; k++) {
		const struct rbatch_call *c = &b->calls[k];
		const struct vma_rec *v = &m->vmas[c->tag & TAG_IDX];
		if ((c->tag & ~TAG_IDX) == TAG_ADVISE && c->ret < 0)
			log_warn_errno((int)c->ret, "pid %d: madvise(%d) on %" PRIx64 " failed: %m", b->r->pid,
				       (int)c->a[2], v->start);
		if ((c->tag & ~TAG_IDX) == TAG_MAP && c->nr == SYS_mmap && (uint64_t)c->ret != v->start)
			return map_failed(b, m, c->tag & TAG_IDX, -EFAULT);
	}
	return 0;
}

/* A mapping made alone (shared memory objects, System V segments). */
static int map_alone(struct rbatch *b, const struct vma_rec *v, struct files_ctx *fc, int tfd)
{
	long ret = v->kind == VMA_SHMEM ? map_shmem(b->r, b->tid, v, fc, tfd) : ipc_shm_attach(b->r, b->tid, v);
	return ret < 0 ? (int)ret : 0;
}

static void add_map(struct rbatch *b, const struct vma_rec *v, uint32_t i, long fd)
{
	/* A kept mapping is the parent's, inherited copy-on-write. */
	if (v->keep)
		rbatch_call(b, TAG_MAP | i, 0, SYS_mprotect, v->start, v->end - v->start, fill_prot(v));
	else
		rbatch_call(b, TAG_MAP | i, 0, SYS_mmap, v->start, v->end - v->start, fill_prot(v), map_flags(v), fd,
			    fd >= 0 ? v->pgoff : 0);
}

static void add_advice(struct rbatch *b, const struct vma_rec *v, uint32_t i)
{
	for (size_t k = 0; k < NADVICES; k++)
		if (v->vmflags & advices[k].flag)
			rbatch_call(b, TAG_ADVISE | i, RB_MAY_FAIL, SYS_madvise, v->start, v->end - v->start,
				    advices[k].advice);
}

static int map_all(struct rbatch *b, const struct mm_rec *m, const long *fds, struct files_ctx *fc, int tfd)
{
	int e;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		bool alone = !v->keep && (v->kind == VMA_SHMEM || v->kind == VMA_SYSVSHM);
		if (is_special(v->kind))
			continue;
		if ((alone || !rbatch_room(b, 1 + NADVICES, 0)) && (e = run_maps(b, m)) < 0)
			return e;
		if (alone && (e = map_alone(b, v, fc, tfd)) < 0)
			return map_failed(b, m, i, e);
		if (!alone)
			add_map(b, v, (uint32_t)i, fds[i]);
		add_advice(b, v, (uint32_t)i);
		if (v->kind == VMA_SHMEM && streq(v->path, m->exe) && (e = shobj_readonly(fc, &v->obj)) < 0)
			return e; /* a deleted executable: no writer (shmem.h) */
	}
	return run_maps(b, m);
}

/* Each file once: vmas sharing an open are neighbours among the files. */
static void close_files(struct rbatch *b, const struct mm_rec *m, const long *fds)
{
	long last = -1;
	for (size_t i = 0; i < m->nvmas; i++) {
		if (fds[i] >= 0 && fds[i] != last) {
			if (!rbatch_room(b, 1, 0))
				(void)rbatch_run(b);
			rbatch_call(b, 0, RB_MAY_FAIL, SYS_close, fds[i]);
		}
		if (is_file(&m->vmas[i]))
			last = fds[i];
	}
	(void)rbatch_run(b);
}

int mm_restore_vmas(struct remote *r, pid_t tid, const struct mm_rec *m, struct files_ctx *fc, int tfd)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	_cleanup_free_ long *fds = calloc(m->nvmas + 1, sizeof(*fds));
	if (!b || !fds)
		return -ENOMEM;
	rbatch_begin(b, r, tid);
	int e = open_files(b, m, fds);
	if (e >= 0)
		e = map_all(b, m, fds, fc, tfd);
	rbatch_begin(b, r, tid);
	close_files(b, m, fds);
	return e;
}

/* The executable is a regular file (not a FIFO or device someone put at
 * the path since). */
static int check_exe(struct remote *r, const struct mm_rec *m, long fd)
{
	char p[64];
	struct stat st;
	snprintf(p, sizeof(p), "/proc/%d/fd/%ld", r->pid, fd);
	if (stat(p, &st) < 0)
		return log_error_errno(-errno, "pid %d: cannot look at executable %s: %m", r->pid, m->exe);
	if (!S_ISREG(st.st_mode))
		return log_error_errno(-EBADMSG, "pid %d: executable %s is not a regular file here; refusing it",
				       r->pid, m->exe);
	return 0;
}

/* The executable, to open in the task: by path, or for a deleted one (a
 * memfd run with execveat) through its restored mapping. */
static const char *exe_path(const struct mm_rec *m, char *buf, size_t size, int *ret_flags)
{
	int fl = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_SHMEM || !streq(v->path, m->exe))
			continue;
		snprintf(buf, size, "/proc/self/map_files/%" PRIx64 "-%" PRIx64, v->start, v->end);
		*ret_flags = fl & ~O_NOFOLLOW;
		return buf;
	}
	*ret_flags = fl;
	return m->exe;
}

#define FIN_EXE UINT32_MAX /* the tag of the executable's open; else the vma's index */

/* The final protections and the executable's open, in one batch; the
 * fd, or -1 where the process executed the file itself. */
static long protect_open_exe(struct rbatch *b, const struct mm_rec *m, bool exe_is_set)
{
	char buf[96];
	int fl, e = 0;
	for (size_t i = 0; i < m->nvmas && e >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!is_special(v->kind) && fill_prot(v) != v->prot && (e = rbatch_reserve(b, 1, 0)) >= 0)
			rbatch_call(b, (uint32_t)i, 0, SYS_mprotect, v->start, v->end - v->start, v->prot);
	}
	const char *p = exe_path(m, buf, sizeof(buf), &fl);
	size_t at = b->n;
	if (e >= 0 && !exe_is_set && (e = rbatch_reserve(b, 1, strlen(p) + 1)) >= 0)
		at = rbatch_call(b, FIN_EXE, 0, SYS_openat, AT_FDCWD, rbatch_data(b, p, strlen(p) + 1), fl, 0);
	if (e >= 0)
		e = rbatch_run(b);
	if (e >= 0)
		return exe_is_set ? -1 : b->calls[at].ret;
	if (b->failed == RBATCH_NONE)
		return log_error_errno(e, "pid %d: cannot protect its memory: %m", b->r->pid);
	uint32_t tag = b->calls[b->failed].tag;
	if (tag == FIN_EXE)
		return log_error_errno(e, "pid %d: cannot open executable %s: %m", b->r->pid, m->exe);
	return log_error_errno(e, "pid %d: cannot protect %" PRIx64 ": %m", b->r->pid, m->vmas[tag].start);
}

int mm_restore_finish(struct remote *r, pid_t tid, const struct mm_rec *m, bool exe_is_set)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	int e = b ? mm_guards_restore(r, tid, m) : -ENOMEM;
	if (e < 0)
		return e;
	rbatch_begin(b, r, tid);
	long exe_fd = protect_open_exe(b, m, exe_is_set);
	if (exe_fd < -1)
		return (int)exe_fd;
	if (exe_fd >= 0 && (e = check_exe(r, m, exe_fd)) < 0) {
		remote_syscall(r, tid, SYS_close, exe_fd);
		return e;
	}
	struct prctl_mm_map map = {
		.start_code = m->start_code, .end_code = m->end_code, .start_data = m->start_data,
		.end_data = m->end_data, .start_brk = m->start_brk, .brk = m->brk, .start_stack = m->start_stack,
		.arg_start = m->arg_start, .arg_end = m->arg_end, .env_start = m->env_start, .env_end = m->env_end,
		.auxv = (__u64 *)(r->scratch + 16384), .auxv_size = (uint32_t)m->auxv_len, .exe_fd = (uint32_t)exe_fd,
	};
	e = remote_write(r, r->scratch + 16384, m->auxv, m->auxv_len);
	if (e >= 0)
		e = remote_write(r, r->scratch + 8192, &map, sizeof(map));
	if (e < 0)
		return e;
	/* The close goes in the same round trip; after a failing prctl, alone. */
	rbatch_call(b, 0, 0, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, r->scratch + 8192, sizeof(map), 0);
	if (exe_fd >= 0)
		rbatch_call(b, 1, RB_MAY_FAIL, SYS_close, exe_fd);
	if ((e = rbatch_run(b)) < 0 && exe_fd >= 0)
		remote_syscall(r, tid, SYS_close, exe_fd);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot set memory layout fields (PR_SET_MM_MAP): %m", r->pid);
	return 0;
}
