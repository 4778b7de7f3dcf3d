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

/* Unmaps [start, end) of the stub but the mappings it keeps from its
 * parent (mm-cow.c); vmas are sorted, kept ones are few. */
static long unmap_but_kept(struct remote *r, pid_t tid, const struct mm_rec *m, uint64_t start, uint64_t end)
{
	long ret = 0;
	for (size_t i = 0; m->nrefs && i < m->nvmas && start < end && ret >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!v->keep || v->end <= start)
			continue;
		if (v->start >= end)
			break;
		if (v->start > start)
			ret = remote_syscall(r, tid, SYS_munmap, start, v->start - start);
		start = v->end;
	}
	if (ret >= 0 && start < end)
		ret = remote_syscall(r, tid, SYS_munmap, start, end - start);
	return ret;
}

static long rmremap(struct remote *r, pid_t tid, uint64_t from, uint64_t len, uint64_t to)
{
	return remote_syscall(r, tid, SYS_mremap, from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
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
 * child forked from a restored parent has all of its mappings, and a
 * remote call costs ~40 us), never reaching over the parking place. */
static int park_and_unmap(struct remote *r, pid_t tid, const struct mm_rec *m, struct vma *cur, size_t ncur,
			  uint64_t tmp)
{
	const uint64_t park_end = tmp + (64 << 20);
	uint64_t from = 0, to = 0;
	long ret = 0;
	for (size_t i = 0; i < ncur && ret >= 0; i++) {
		struct vma *c = &cur[i];
		bool special = streq(c->path, "[vdso]") || streq(c->path, "[vvar]") || streq(c->path, "[vvar_vclock]");
		bool stays = c->start == r->scratch || streq(c->path, "[vsyscall]");
		if (!special && !stays && to && (to >= park_end || c->start <= tmp)) {
			to = c->end; /* joins the range */
			continue;
		}
		if (to)
			ret = unmap_but_kept(r, tid, m, from, to);
		from = to = 0;
		if (ret >= 0 && special) {
			uint64_t at = tmp + (c->start & ((32 << 20) - 1));
			ret = rmremap(r, tid, c->start, c->end - c->start, at);
			c->end = at + (c->end - c->start);
			c->start = at;
		} else if (!stays) {
			from = c->start, to = c->end;
		}
	}
	if (ret >= 0 && to)
		ret = unmap_but_kept(r, tid, m, from, to);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot clear the stub's mappings: %m", r->pid);
	return 0;
}

int mm_clear_stub(struct remote *r, pid_t tid, const struct mm_rec *m, int procfd)
{
	_cleanup_free_ char *buf = NULL;
	struct vma *cur = NULL;
	size_t len, ncur = 0;
	uint64_t tmp;
	long ret;
	int e;

	if ((e = proc_read(procfd, "maps", &buf, &len)) < 0 || (e = proc_parse_smaps(buf, len, &cur, &ncur)) < 0)
		return log_error_errno(e, "pid %d: cannot read the stub's mappings: %m", r->pid);
	/* Park vdso & co. in a free place first: their final addresses may be
	 * where the stub's own mappings are now. */
	e = mm_find_gap(m, cur, ncur, 64 << 20, &tmp);
	if (e < 0)
		goto out;
	if ((e = park_and_unmap(r, tid, m, cur, ncur, tmp)) < 0)
		goto out;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (!is_special(v->kind))
			continue;
		for (size_t k = 0; k < ncur; k++) {
			if (!streq(cur[k].path, special_name(v->kind)))
				continue;
			ret = rmremap(r, tid, cur[k].start, v->end - v->start, v->start);
			if (ret < 0) {
				e = log_error_errno((int)ret, "pid %d: cannot move %s to %" PRIx64 ": %m", r->pid,
						    cur[k].path, v->start);
				goto out;
			}
		}
	}
	/* What the program had unmapped itself (a vdso-less program) goes. */
	for (size_t k = 0; k < ncur; k++) {
		bool special = streq(cur[k].path, "[vdso]") || streq(cur[k].path, "[vvar]") ||
			       streq(cur[k].path, "[vvar_vclock]");
		if (special && !has_special(m, cur[k].path) &&
		    (ret = remote_syscall(r, tid, SYS_munmap, cur[k].start, cur[k].end - cur[k].start)) < 0) {
			e = log_error_errno((int)ret, "pid %d: cannot remove %s, which it did not have: %m", r->pid,
					    cur[k].path);
			goto out;
		}
	}
	e = 0;
out:
	vmas_free(cur, ncur);
	return e;
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

static long map_one(struct remote *r, pid_t tid, const struct vma_rec *v, long fd)
{
	int flags = MAP_FIXED | (v->shared ? MAP_SHARED : MAP_PRIVATE);
	bool has_fd = v->kind == VMA_FILE || v->kind == VMA_SHMEM;
	if (!has_fd)
		flags |= MAP_ANONYMOUS;
	if (v->vmflags & VMF_GROWSDOWN)
		flags |= MAP_GROWSDOWN;
	if (v->vmflags & VMF_NORESERVE)
		flags |= MAP_NORESERVE;
	long ret = remote_syscall(r, tid, SYS_mmap, v->start, v->end - v->start, fill_prot(v), flags,
				  has_fd ? fd : -1, has_fd ? v->pgoff : 0);
	if (ret < 0 && ret > -4096)
		return ret;
	return (uint64_t)ret == v->start ? 0 : -EFAULT;
}

static int advise(struct remote *r, pid_t tid, const struct vma_rec *v)
{
	static const struct {
		uint32_t flag;
		int advice;
	} map[] = {
		{ VMF_HUGEPAGE, MADV_HUGEPAGE }, { VMF_NOHUGEPAGE, MADV_NOHUGEPAGE },
		{ VMF_DONTDUMP, MADV_DONTDUMP }, { VMF_DONTCOPY, MADV_DONTFORK },
		{ VMF_WIPEONFORK, MADV_WIPEONFORK }, { VMF_MERGEABLE, MADV_MERGEABLE },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(v->vmflags & map[i].flag))
			continue;
		long ret = remote_syscall(r, tid, SYS_madvise, v->start, v->end - v->start, map[i].advice);
		if (ret < 0)
			log_warn_errno((int)ret, "pid %d: madvise(%d) on %" PRIx64 " failed: %m", r->pid, map[i].advice,
				       v->start);
	}
	return 0;
}

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

int mm_restore_vmas(struct remote *r, pid_t tid, const struct mm_rec *m, struct files_ctx *fc, int tfd)
{
	long fd = -1;
	const char *fd_path = NULL;
	int fd_flags = 0, e = 0;

	for (size_t i = 0; i < m->nvmas && e >= 0; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (is_special(v->kind))
			continue;
		if (v->kind == VMA_FILE && (!fd_path || !streq(fd_path, v->path) || fd_flags != file_flags(v))) {
			if (fd >= 0)
				remote_syscall(r, tid, SYS_close, fd);
			fd_flags = file_flags(v);
			/* The path from /proc is resolved: a symlink there now is not
			 * the file that was mapped. */
			fd = remote_open(r, tid, v->path, fd_flags | O_NOFOLLOW, 0);
			fd_path = v->path;
			if (fd < 0) {
				e = log_error_errno((int)fd, "pid %d: cannot open mapped file %s: %m", r->pid, v->path);
				break;
			}
		}
		/* A kept mapping is the parent's, inherited copy-on-write. */
		long ret = v->keep		 ? remote_syscall(r, tid, SYS_mprotect, v->start, v->end - v->start, fill_prot(v))
			   : v->kind == VMA_SHMEM	 ? map_shmem(r, tid, v, fc, tfd)
			   : v->kind == VMA_SYSVSHM ? ipc_shm_attach(r, tid, v)
						    : map_one(r, tid, v, fd);
		if (ret < 0) {
			e = log_error_errno((int)ret, "pid %d: cannot map %" PRIx64 "-%" PRIx64 " (%s): %m", r->pid,
					    v->start, v->end, v->path ? v->path : "anonymous");
			break;
		}
		e = advise(r, tid, v);
		if (e >= 0 && v->kind == VMA_SHMEM && streq(v->path, m->exe))
			e = shobj_readonly(fc, &v->obj); /* a deleted executable: no writer (shmem.h) */
	}
	if (fd >= 0)
		remote_syscall(r, tid, SYS_close, fd);
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

/* The executable, opened in the task: by path, or for a deleted one (a
 * memfd run with execveat) through its restored mapping. */
static long open_exe(struct remote *r, pid_t tid, const struct mm_rec *m)
{
	char p[96];
	int fl = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_SHMEM || !streq(v->path, m->exe))
			continue;
		snprintf(p, sizeof(p), "/proc/self/map_files/%" PRIx64 "-%" PRIx64, v->start, v->end);
		return remote_open(r, tid, p, fl & ~O_NOFOLLOW, 0);
	}
	return remote_open(r, tid, m->exe, fl, 0);
}

int mm_restore_finish(struct remote *r, pid_t tid, const struct mm_rec *m, bool exe_is_set)
{
	int g = mm_guards_restore(r, tid, m);
	if (g < 0)
		return g;
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (is_special(v->kind) || fill_prot(v) == v->prot)
			continue;
		long ret = remote_syscall(r, tid, SYS_mprotect, v->start, v->end - v->start, v->prot);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot protect %" PRIx64 ": %m", r->pid, v->start);
	}
	/* -1: no change (the process executed the file itself). */
	long exe_fd = exe_is_set ? -1 : open_exe(r, tid, m);
	if (exe_fd < 0 && !exe_is_set)
		return log_error_errno((int)exe_fd, "pid %d: cannot open executable %s: %m", r->pid, m->exe);
	int e = exe_fd >= 0 ? check_exe(r, m, exe_fd) : 0;
	if (e < 0) {
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
	long ret = remote_syscall(r, tid, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, r->scratch + 8192, sizeof(map), 0);
	if (exe_fd >= 0)
		remote_syscall(r, tid, SYS_close, exe_fd);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot set memory layout fields (PR_SET_MM_MAP): %m", r->pid);
	return 0;
}
