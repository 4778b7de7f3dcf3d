/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dump side of the address space: which mappings exist, what kind they
 * are, and the JSON record. Pages are in mm-pages.c, the restore in
 * mm-restore.c. */
#include "engine/mm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "image/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static const char *const kind_names[VMA_KIND_MAX] = {
	[VMA_ANON] = "anon", [VMA_FILE] = "file", [VMA_SHMEM] = "shmem",
	[VMA_VVAR] = "vvar", [VMA_VVAR_VCLOCK] = "vvar_vclock", [VMA_VDSO] = "vdso",
	[VMA_SYSVSHM] = "sysvshm",
};

const char *vma_kind_name(enum vma_kind k)
{
	return k < VMA_KIND_MAX && kind_names[k] ? kind_names[k] : "?";
}

void mm_rec_free(struct mm_rec *m)
{
	if (!m)
		return;
	mm_smaps_cancel(m);
	for (size_t i = 0; i < m->nvmas; i++)
		free(m->vmas[i].path);
	free(m->vmas);
	free(m->guards);
	free(m->exe);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

static bool endswith(const char *s, const char *suffix)
{
	size_t l = strlen(s), k = strlen(suffix);
	return l >= k && streq(s + l - k, suffix);
}

/* A mapping of a System V segment ("/SYSV%08x"): attached again by id
 * on restore (ipc-restore.c), so only whole segments can be. */
static int classify_sysvshm(pid_t pid, int procfd, const struct vma *v, struct vma_rec *out)
{
	char link[64];
	unsigned key;
	struct stat st;
	if (sscanf(v->path, "/SYSV%8x", &key) != 1)
		return log_error_errno(-EOPNOTSUPP, "pid %d: mapping %" PRIx64 " (%s) is not a System V segment",
				       pid, v->start, v->path);
	snprintf(link, sizeof(link), "map_files/%" PRIx64 "-%" PRIx64, v->start, v->end);
	if (fstatat(procfd, link, &st, 0) < 0)
		return log_error_errno(-errno, "pid %d: cannot stat System V segment mapping %" PRIx64 ": %m", pid,
				       v->start);
	uint64_t whole = ((uint64_t)st.st_size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (v->pgoff || v->end - v->start != whole)
		return log_error_errno(-EOPNOTSUPP, "pid %d: mapping %" PRIx64 "-%" PRIx64 " covers part of System V "
				       "shared memory segment %" PRIu64 " (split by mprotect or munmap); this cannot "
				       "be checkpointed yet", pid, v->start, v->end, v->ino);
	if (v->ino > INT32_MAX)
		return -EBADMSG;
	out->kind = VMA_SYSVSHM;
	out->shmid = (int32_t)v->ino;
	out->shmkey = (int32_t)key;
	return 0;
}


/* Decides the kind of one mapping; -EOPNOTSUPP (logged) for what we
 * cannot save. *skip is set for mappings that are not ours to save. */
static int classify(pid_t pid, int procfd, const struct vma *v, struct vma_rec *out, bool *skip)
{
	const char *p = v->path;
	*skip = false;
	if (streq(p, "[vsyscall]")) {
		*skip = true;
		return 0;
	}
	if (streq(p, "[vdso]"))
		return out->kind = VMA_VDSO, 0;
	if (streq(p, "[vvar]"))
		return out->kind = VMA_VVAR, 0;
	if (streq(p, "[vvar_vclock]"))
		return out->kind = VMA_VVAR_VCLOCK, 0;
	if (v->vmflags & (VMF_IO | VMF_PFNMAP))
		goto unsupported;
	if (!v->shared && (!*p || streq(p, "[heap]") || streq(p, "[stack]") || startswith(p, "[anon:") ||
			   streq(p, "/dev/zero")))
		return out->kind = VMA_ANON, 0;
	char link[64];
	snprintf(link, sizeof(link), "map_files/%" PRIx64 "-%" PRIx64, v->start, v->end);
	if (v->shared && startswith(p, "/SYSV"))
		return classify_sysvshm(pid, procfd, v, out);
	/* A private mapping of one too: the object, then its copy-on-write
	 * pages like a private file mapping's. */
	if (endswith(p, " (deleted)") && !startswith(p, "/SYSV")) {
		_cleanup_close_ int fd = openat(procfd, link, O_RDONLY | O_CLOEXEC);
		int r = fd < 0 ? -errno : shobj_stat(fd, &out->obj);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot open shared memory %s: %m", pid, p);
		out->kind = VMA_SHMEM;
		out->path = strdup(p);
		return out->path ? 0 : -ENOMEM;
	}
	if (*p != '/' || endswith(p, " (deleted)"))
		goto unsupported;

	struct stat st;
	if (fstatat(procfd, link, &st, 0) < 0)
		return log_error_errno(-errno, "pid %d: cannot stat mapped file %s: %m", pid, p);
	if (!S_ISREG(st.st_mode))
		goto unsupported;
	out->kind = VMA_FILE;
	out->fsize = (uint64_t)st.st_size;
	out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	out->path = strdup(p);
	return out->path ? 0 : -ENOMEM;

unsupported:
	log_error("pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s%s) cannot be checkpointed yet: %s", pid, v->start,
		  v->end, *p ? p : "anonymous", v->shared ? ", shared" : "",
		  endswith(p, " (deleted)") ? "private mappings of deleted files and memfds are not supported"
					    : "device and special mappings are not supported");
	return -EOPNOTSUPP;
}

static int collect_vmas(int procfd, pid_t pid, struct mm_rec *m)
{
	_cleanup_free_ char *buf = NULL;
	size_t len, n;
	struct vma *v;
	uint64_t t0 = now_ns();
	/* smaps walks every page table: most of what looking at a big
	 * process costs. A tracked one's is read beside the dump (mm.h). */
	const char *what = m->tracked ? "maps" : "smaps";
	int r = proc_read(procfd, what, &buf, &len);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read %s: %m", pid, what);
	log_debug("pid %d: %s read in %.1f ms", pid, what, (double)(now_ns() - t0) / 1e6);
	r = proc_parse_smaps(buf, len, &v, &n);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot parse smaps: %m", pid);
	if (n > MAX_VMAS) {
		vmas_free(v, n);
		return log_error_errno(-E2BIG, "pid %d: too many mappings (%zu)", pid, n);
	}
	m->vmas = calloc(n ? n : 1, sizeof(*m->vmas));
	if (!m->vmas) {
		vmas_free(v, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct vma_rec *o = &m->vmas[m->nvmas];
		bool skip;
		*o = (struct vma_rec){ .start = v[i].start, .end = v[i].end, .pgoff = v[i].pgoff, .prot = v[i].prot,
				       .vmflags = v[i].vmflags, .shared = v[i].shared, .thp = v[i].thp_kb << 10 };
		r = classify(pid, procfd, &v[i], o, &skip);
		if (r < 0)
			break;
		if (!skip)
			m->nvmas++;
	}
	vmas_free(v, n);
	return r;
}

static int collect_fields(int procfd, pid_t pid, struct mm_rec *m)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct proc_stat st;
	int r = proc_read(procfd, "stat", &buf, &len);
	if (r < 0 || (r = proc_parse_stat(buf, len, &st)) < 0)
		return log_error_errno(r, "pid %d: cannot read stat: %m", pid);
	m->start_code = st.start_code, m->end_code = st.end_code, m->start_stack = st.start_stack;
	m->start_data = st.start_data, m->end_data = st.end_data, m->start_brk = st.start_brk;
	m->arg_start = st.arg_start, m->arg_end = st.arg_end, m->env_start = st.env_start, m->env_end = st.env_end;

	_cleanup_free_ char *auxv = NULL;
	r = proc_read(procfd, "auxv", &auxv, &len);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read auxv: %m", pid);
	if (len > MAX_AUXV)
		return log_error_errno(-E2BIG, "pid %d: auxv too large", pid);
	memcpy(m->auxv, auxv, len);
	m->auxv_len = len;

	char exe[4096];
	ssize_t l = readlinkat(procfd, "exe", exe, sizeof(exe) - 1);
	if (l < 0)
		return log_error_errno(-errno, "pid %d: cannot read exe link: %m", pid);
	exe[l] = 0;
	/* A deleted executable (or a memfd run with execveat) comes back from
	 * its mapping, saved as a shared memory object (mm-restore.c). */
	bool mapped = false;
	for (size_t i = 0; i < m->nvmas && !mapped; i++)
		mapped = m->vmas[i].kind == VMA_SHMEM && streq(m->vmas[i].path, exe);
	if (endswith(exe, " (deleted)") && !mapped)
		return log_error_errno(-EOPNOTSUPP, "pid %d: its executable %s was deleted and is not mapped any "
				       "more; cannot checkpoint", pid, exe);
	m->exe = strdup(exe);
	return m->exe ? 0 : -ENOMEM;
}

int mm_collect(int procfd, pid_t pid, struct mm_rec *m)
{
	int r = collect_vmas(procfd, pid, m);
	if (r < 0)
		return r;
	if ((r = collect_fields(procfd, pid, m)) < 0)
		return r;
	/* A tracked process's: after its remote calls, beside the copy (dump.c). */
	return m->tracked ? 0 : mm_guards_collect(procfd, pid, m);
}

static void vma_to_json(const struct vma_rec *v, struct json_builder *o)
{
	jb_u64(o, "start", v->start);
	jb_u64(o, "end", v->end);
	jb_u64(o, "pgoff", v->pgoff);
	jb_i64(o, "prot", v->prot);
	jb_i64(o, "vmflags", v->vmflags);
	if (v->thp)
		jb_u64(o, "thp", v->thp);
	jb_bool(o, "shared", v->shared);
	jb_str(o, "kind", kind_names[v->kind]);
	if (v->kind == VMA_FILE) {
		jb_str(o, "path", v->path);
		jb_u64(o, "fsize", v->fsize);
		jb_i64(o, "mtime_ns", v->mtime_ns);
	}
	if (v->kind == VMA_SHMEM) {
		jb_str(o, "path", v->path);
		shobj_to_jb(o, &v->obj);
	}
	if (v->kind == VMA_SYSVSHM) {
		jb_i64(o, "shmid", v->shmid);
		jb_i64(o, "shmkey", v->shmkey);
	}
}

void mm_to_json(const struct mm_rec *m, struct json_builder *b)
{
	json_t *a = jb_array(b, "vmas");
	for (size_t i = 0; a && i < m->nvmas; i++) {
		struct json_builder o;
		jb_begin(&o);
		vma_to_json(&m->vmas[i], &o);
		jb_append_obj(b, a, &o);
	}
	const struct {
		const char *k;
		uint64_t v;
	} f[] = {
		{ "start_code", m->start_code }, { "end_code", m->end_code }, { "start_data", m->start_data },
		{ "end_data", m->end_data }, { "start_brk", m->start_brk }, { "brk", m->brk },
		{ "start_stack", m->start_stack }, { "arg_start", m->arg_start }, { "arg_end", m->arg_end },
		{ "env_start", m->env_start }, { "env_end", m->env_end }, { "pages", m->pages },
	};
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		jb_u64(b, f[i].k, f[i].v);
	if (m->parent_pages) /* absent: nothing shared (FORMAT.md, version 4) */
		jb_u64(b, "parent_pages", m->parent_pages);
	if (m->chain_pages) /* absent: none in a parent image (FORMAT.md, version 4) */
		jb_u64(b, "chain_pages", m->chain_pages);
	jb_hex(b, "auxv", m->auxv, m->auxv_len);
	jb_str(b, "exe", m->exe);
	jb_x64(b, "vdso_hash", m->vdso_hash);
	mm_guards_to_json(m, b);
}

static int vma_from_json(const json_t *o, struct vma_rec *v)
{
	const char *kind, *path;
	bool shared;
	int r, prot, fl;

	if ((r = json_get_u64(o, "start", &v->start)) < 0 || (r = json_get_u64(o, "end", &v->end)) < 0 ||
	    (r = json_get_u64(o, "pgoff", &v->pgoff)) < 0 || (r = json_get_int(o, "prot", &prot)) < 0 ||
	    (r = json_get_int(o, "vmflags", &fl)) < 0 || (r = json_get_bool(o, "shared", &shared)) < 0 ||
	    (r = json_get_str(o, "kind", &kind)) < 0)
		return r;
	if (v->start >= v->end || v->start % PAGE_SIZE || v->end % PAGE_SIZE || v->end > (1ULL << 47) ||
	    v->pgoff % PAGE_SIZE || prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -EBADMSG;
	/* Optional (Version 4): memory that was in huge pages. */
	if (json_object_get(o, "thp") && ((r = json_get_u64(o, "thp", &v->thp)) < 0 || v->thp > v->end - v->start))
		return -EBADMSG;
	v->prot = (uint32_t)prot;
	v->vmflags = (uint32_t)fl;
	v->shared = shared;
	v->kind = VMA_KIND_MAX;
	for (int k = 0; k < VMA_KIND_MAX; k++)
		if (streq(kind, kind_names[k]))
			v->kind = (enum vma_kind)k;
	if (v->kind == VMA_KIND_MAX)
		return -EBADMSG;
	if (v->kind == VMA_SYSVSHM)
		return json_get_int(o, "shmid", &v->shmid) < 0 || json_get_int(o, "shmkey", &v->shmkey) < 0 ||
		       v->shmid < 0 || !shared || v->pgoff ? -EBADMSG : 0;
	if (v->kind != VMA_FILE && v->kind != VMA_SHMEM)
		return 0;
	if (v->kind == VMA_SHMEM && ((r = json_get_str(o, "path", &path)) < 0 || (r = shobj_from_json(o, &v->obj)) < 0))
		return r;
	if (v->kind == VMA_FILE &&
	    ((r = json_get_str(o, "path", &path)) < 0 || (r = json_get_u64(o, "fsize", &v->fsize)) < 0 ||
	     (r = json_get_i64(o, "mtime_ns", &v->mtime_ns)) < 0))
		return r;
	if (!path_is_normal(path) || strlen(path) >= 4096)
		return -EBADMSG;
	v->path = strdup(path);
	return v->path ? 0 : -ENOMEM;
}

int mm_from_json(const json_t *j, struct mm_rec *m)
{
	json_t *a;
	const char *exe;
	int r;

	memset(m, 0, sizeof(*m));
	if ((r = json_get_array(j, "vmas", MAX_VMAS, &a)) < 0)
		return r;
	size_t n = json_array_size(a);
	m->vmas = calloc(n ? n : 1, sizeof(*m->vmas));
	if (!m->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = vma_from_json(json_array_get(a, i), &m->vmas[i]);
		m->nvmas = i + 1;
		if (r < 0)
			return r;
		if (i && m->vmas[i].start < m->vmas[i - 1].end)
			return -EBADMSG; /* unsorted or overlapping */
	}
	struct {
		const char *k;
		uint64_t *v;
	} f[] = {
		{ "start_code", &m->start_code }, { "end_code", &m->end_code }, { "start_data", &m->start_data },
		{ "end_data", &m->end_data }, { "start_brk", &m->start_brk }, { "brk", &m->brk },
		{ "start_stack", &m->start_stack }, { "arg_start", &m->arg_start }, { "arg_end", &m->arg_end },
		{ "env_start", &m->env_start }, { "env_end", &m->env_end }, { "pages", &m->pages },
	};
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if ((r = json_get_u64(j, f[i].k, f[i].v)) < 0)
			return r;
	if (json_object_get(j, "chain_pages") &&
	    ((r = json_get_u64(j, "chain_pages", &m->chain_pages)) < 0 || m->chain_pages > MAX_PAGES))
		return r < 0 ? r : -EBADMSG;
	if (json_object_get(j, "parent_pages") &&
	    ((r = json_get_u64(j, "parent_pages", &m->parent_pages)) < 0 || m->parent_pages > MAX_PAGES))
		return r < 0 ? r : -EBADMSG;
	void *auxv;
	if ((r = json_get_hex_alloc(j, "auxv", MAX_AUXV, &auxv, &m->auxv_len)) < 0)
		return r;
	memcpy(m->auxv, auxv, m->auxv_len);
	free(auxv);
	if ((r = json_get_str(j, "exe", &exe)) < 0 || (r = json_get_x64(j, "vdso_hash", &m->vdso_hash)) < 0)
		return r;
	/* Opened by the restorer's stub as it is: never relative to some
	 * working directory, never through "..". */
	if (!path_is_normal(exe) || m->pages > MAX_PAGES)
		return -EBADMSG;
	m->exe = strdup(exe);
	return m->exe ? mm_guards_from_json(j, m) : -ENOMEM;
}

int mm_find_syscall(const struct mm_rec *m, struct remote *r)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < m->nvmas; i++) {
			const struct vma_rec *v = &m->vmas[i];
			bool vdso = v->kind == VMA_VDSO;
			if ((pass == 0) == vdso && (vdso || (v->prot & PROT_EXEC)) &&
			    remote_find_syscall(r, v->start, v->end) == 0)
				return 0;
		}
	return -ENOENT;
}
