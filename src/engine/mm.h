/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The address space: every mapping, the pages that exist in it, the
 * special vdso/vvar mappings and the mm fields of PR_SET_MM_MAP. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "engine/proc.h"
#include "engine/remote.h"
#include "image/image.h"
#include "image/json.h"
#include "image/pagemap.h"
#include "engine/shmem.h"

#define MAX_VMAS 65536
#define MAX_AUXV 1024
#define MAX_PAGES (1ULL << 35) /* every page below 2^47 */

enum vma_kind {
	VMA_ANON,       /* private anonymous (heap, stacks, arenas) */
	VMA_FILE,       /* file-backed, private or shared */
	VMA_SHMEM,      /* shared memory object (shmem.h): MAP_SHARED anon, memfd, deleted file */
	VMA_VVAR,
	VMA_VVAR_VCLOCK,
	VMA_VDSO,
	VMA_SYSVSHM,    /* System V shared memory segment (ipc.h), attached by id */
	VMA_KIND_MAX,
};

struct vma_rec {
	uint64_t start, end, pgoff;
	uint32_t prot, vmflags;
	bool shared;
	enum vma_kind kind;
	char *path;        /* files and shared memory objects */
	struct shobj obj;  /* VMA_SHMEM */
	uint64_t fsize;    /* files: size and mtime at dump, checked on restore */
	int64_t mtime_ns;
	int32_t shmid, shmkey; /* VMA_SYSVSHM */
	uint64_t thp;      /* bytes in transparent huge pages at dump (mm-thp.c); 0: none or unknown */
	bool keep;         /* restore: inherited from the parent as it is (mm-cow.c) */
	bool eager;        /* restore --lazy: filled before the tree runs (a child inherits it) */
	bool filled;       /* restore: pages go into it (mm_mark_filled): writable meanwhile */
};

struct mm_guard {
	uint64_t start, end;
};

struct mm_rec {
	struct vma_rec *vmas;
	size_t nvmas;
	struct mm_guard *guards; /* MADV_GUARD_INSTALL ranges (mm-guard.c), in order */
	size_t nguards;
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint8_t auxv[MAX_AUXV];
	size_t auxv_len;
	char *exe;
	uint64_t vdso_hash; /* XXH3 of the vdso text, to refuse another kernel's */
	uint64_t pages;     /* number of saved pages */
	/* Pages that are the parent's page at the same address (copy-on-write
	 * since fork), saved once, by the parent: pagerefs-PID.img. */
	uint64_t parent_pages;
	bool no_pages; /* dump only: its memory is its parent's (CLONE_VM), saved there */
	struct pagemap_entry *refs; /* restore: their runs (offsets unused) */
	size_t nrefs;
	/* Dump (predump.h): the mappings still write-tracked since the
	 * parent image (--parent) save only their written pages; the rest
	 * of their pages are named in chainpages-PID.img. */
	bool tracked;
	uint64_t chain_pages;
	/* Dump of a tracked process: what the warm-up before the freeze saw
	 * (mm_pages_warm), or NULL. */
	const struct mm_warm *warm;
	/* Dump of a tracked process: smaps being read (mm-smaps.c), or NULL. */
	struct mm_smaps *smaps;
};

/* Dump: the parent of the process being saved, whose pages it may share. */
struct mm_parent {
	int procfd;
	const struct mm_rec *mm;
};

void mm_rec_free(struct mm_rec *m);
/* The kind as the image writes it ("anon", "file", ...). */
const char *vma_kind_name(enum vma_kind k);
/* Reads the mappings and mm fields and refuses (naming pid, address and
 * kind) what cannot be saved. Runs before any change to the process. */
int mm_collect(int procfd, pid_t pid, struct mm_rec *m);
/* mm-smaps.c. A tracked process (m->tracked, a dump with --parent) is
 * looked at through /proc/PID/maps; once our areas are mapped in it the
 * dump starts a thread on smaps, which alone says VmFlags and huge pages
 * but walks every page table; mm_smaps_join() adds them to the records
 * once the pages are saved, and refuses what maps could not tell (device
 * mappings). r: the process's remote state, whose own mappings smaps may
 * show. */
int mm_smaps_start(int procfd, struct mm_rec *m);
int mm_smaps_join(pid_t pid, struct mm_rec *m, const struct remote *r);
void mm_smaps_cancel(struct mm_rec *m);
/* Where remote calls will go (r->syscall_ip): a `syscall` in the vdso,
 * or, for a program without one there (vdso unmapped, or not the usual
 * one), in any other executable mapping. -ENOENT when none has one. */
int mm_find_syscall(const struct mm_rec *m, struct remote *r);
/* Sets r->gadget and r->spin where our own copy of a file the process
 * has mapped says they are and the process has them there too (mm-escape.c);
 * remote_find_escape() looks for whatever is still 0. */
void mm_escape_hint(const struct mm_rec *m, struct remote *r);
/* mm-guard.c: the guard pages of the mappings, found, recorded ("guards"
 * in mm-PID.json, optional) and installed again after the pages. */
int mm_guards_collect(int procfd, pid_t pid, struct mm_rec *m);
/* PAGEMAP_SCAN knows PAGE_IS_GUARD here (a guard reads as "swapped"
 * there: page scans must leave it out). */
bool mm_guards_known(void);
#define MM_PAGE_IS_GUARD (1 << 8)
void mm_guards_to_json(const struct mm_rec *m, struct json_builder *b);
int mm_guards_from_json(const json_t *j, struct mm_rec *m);
int mm_guards_restore(struct remote *r, pid_t tid, const struct mm_rec *m);
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; glibc 2.36 lacks the name */
#endif
/* mm-thp.c: the 2 MiB aligned part of a private anonymous mapping that
 * had transparent huge pages at dump (false: none to make again). */
bool mm_thp_range(const struct vma_rec *v, uint64_t *ret_start, uint64_t *ret_len);
/* Once its pages are in: those parts collapsed into huge pages again. */
int mm_thp_restore(struct remote *r, pid_t tid, const struct mm_rec *m);
/* Before the freeze: the copy buffers mm_dump_pages() uses, made ready
 * where pid's anonymous memory can fill them (first touches are slow on
 * these machines; the tree need not wait for them). Nothing for a
 * process of less than one buffer: its pages go through a small piece. */
int mm_pages_prepare(pid_t pid);
/* Before the freeze of a dump with --parent, after mm_pages_prepare():
 * reads the pages of pid written since the parent image once and forgets
 * them. A warm-up: our kernel's first access to each page of another
 * process costs several us here (DESIGN.md §7), its second a fraction,
 * and the frozen copy is the second. Returns (NULL: none) which of them
 * were pid's own pages, not mapped by another process too. */
struct mm_warm;
struct mm_warm *mm_pages_warm(pid_t pid);
void mm_warm_free(struct mm_warm *s);
/* Frozen: whether the warm-up found [addr, addr+len) pid's own; *at is a
 * cursor, 0 first, for calls in increasing address order. Own or not
 * only chooses how a page is read (mm-pages.c page_run): a page mapped
 * by another process since (a fork in the few ms before the freeze) is
 * read as if own, with the same bytes; only its sharing is lost. Saves
 * one read of /proc/PID/pagemap per written run (~3 us each here). */
bool mm_warm_own(const struct mm_warm *s, size_t *at, uint64_t addr, uint64_t len);
/* How many bytes the warm-up read (0: none, s NULL). */
uint64_t mm_warm_bytes(const struct mm_warm *s);
/* mm-pages.c, for mm-warm.c: a copy buffer of *ret_size bytes, NULL
 * before mm_pages_prepare(). */
void *mm_pages_spare(int i, size_t *ret_size);
/* Saves the pages that exist into pages-PID.img / pagemap-PID.img; with a
 * parent (NULL: none, or not in the tree), pages that are the parent's
 * very page go to pagerefs-PID.img instead. */
int mm_dump_pages(struct image *img, pid_t pid, int procfd, struct remote *r, struct mm_rec *m,
		  const struct mm_parent *parent);
/* mm_dump_pages() without a parent, by a thread of its own while the
 * caller goes on (its remote calls: they must leave the memory saved
 * alone); _join() waits and returns what it returned. */
struct mm_copy;
int mm_dump_pages_start(struct image *img, pid_t pid, int procfd, struct remote *r, struct mm_rec *m,
			struct mm_copy **ret);
int mm_dump_pages_join(struct mm_copy *j);
/* Fills b, the mm-PID.json record; an error stays in the builder. */
void mm_to_json(const struct mm_rec *m, struct json_builder *b);
int mm_from_json(const json_t *j, struct mm_rec *m);

/* Restore, in this order, all through remote syscalls in the stub. */
int mm_check_restorable(const struct mm_rec *m, const char *fsroot);
/* Finds a free address range of len bytes outside both the image's and
 * the stub's current mappings. */
int mm_find_gap(const struct mm_rec *m, const struct vma *cur, size_t ncur, uint64_t len, uint64_t *ret);
int mm_clear_stub(struct remote *r, pid_t tid, const struct mm_rec *m, int procfd);
/* Shared memory objects are made by the restorer (fc) and passed in on
 * the process's transport fd tfd. */
int mm_restore_vmas(struct remote *r, pid_t tid, const struct mm_rec *m, struct files_ctx *fc, int tfd);
int mm_restore_pages(struct remote *r, pid_t tid, struct image *img, const struct mm_rec *m, int ctl, int tfd);
/* The page file of pid (opened), whether it is compressed, and its index,
 * checked against the file and the record m (logged). */
struct mm_pages {
	char name[IMAGE_NAME_MAX];
	int fd;
	bool zstd;
	struct pagemap_entry *pm;
	size_t n;
};
int mm_pages_open(struct image *img, const struct mm_rec *m, pid_t pid, struct mm_pages *ret);
void mm_pages_close(struct mm_pages *p);
/* Marks the mappings pages of the page file go into (all that may hold
 * pages: all): only those are made writable while memory is filled, the
 * others are mapped as they end (no mprotect afterwards). */
int mm_mark_filled(struct image *img, struct mm_rec *m, pid_t pid, bool all);
/* mm-zfill.c: the same from a compressed page file (dump --compress),
 * decompressed here in order and written through /proc/PID/mem. */
int mm_fill_zstd(struct remote *r, struct image *img, const char *pages, const struct pagemap_entry *pm, size_t n);
int mm_restore_finish(struct remote *r, pid_t tid, const struct mm_rec *m, bool exe_is_set);

/* mm-cow.c: copy-on-write sharing between a process and its parent.
 * A mapping whose pages a child may share with its parent: private
 * anonymous, inherited at fork, the same range and flags in both. */
bool mm_cow_vma_ok(const struct mm_rec *parent, const struct vma_rec *v);
/* Dump: splits present pages [addr, addr+len) into runs of one class,
 * calling fn for each in address order. self_fd and parent_fd (-1: no
 * parent to share with): their pagemaps. */
enum mm_page_class {
	MM_PAGE_OWN,     /* mapped by this process only */
	MM_PAGE_SHARED,  /* mapped by others too: read without unsharing it */
	MM_PAGE_PARENTS, /* the parent's very page at the same address */
};
typedef int (*mm_cow_fn)(void *arg, uint64_t addr, uint64_t len, enum mm_page_class k);
int mm_cow_split(int self_fd, int parent_fd, uint64_t addr, uint64_t len, mm_cow_fn fn, void *arg);
/* Restore, before mm_clear_stub: reads pagerefs-PID.img (checked
 * against both mm records) and, when the process was forked from its
 * restored parent (inherit), marks the mappings to keep as they are. */
int mm_load_refs(struct image *img, pid_t pid, struct mm_rec *m, const struct mm_rec *parent, bool inherit);
/* After mm_restore_vmas: in the kept mappings, drops what the parent
 * has there but this process did not share (it reads zero again or gets
 * its own page from the page file). */
int mm_restore_kept(struct remote *r, pid_t tid, int procfd, const struct mm_rec *m);
/* Without inheritance: copies the shared pages from the restored
 * parent's memory (its /proc/PID/mem, parent_mem_fd). */
int mm_copy_refs(struct remote *r, const struct mm_rec *m, int parent_mem_fd);
