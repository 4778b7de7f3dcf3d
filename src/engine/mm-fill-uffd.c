/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Eager fill through a userfaultfd (mm-fill.h). process_vm_writev into a
 * fresh mapping makes the kernel fault each page in: allocate it, zero it,
 * then copy our bytes over it. UFFDIO_COPY allocates the page and copies
 * into it, with no zeroing and no fault: measured here for 1 GiB, one
 * thread, 0.17-0.18 s against 0.22-0.23 s, and it scales with the workers
 * (different 4 MiB chunks, different page tables).
 *
 * The userfaultfd is made by the stopped process (it belongs to its mm;
 * the syscall, or /dev/userfaultfd where a seccomp filter refuses it),
 * taken out and closed there at once: the process never holds it. No
 * events are asked for: nobody reads the fd, and the process does not run
 * while its memory is registered. Only the private anonymous mappings
 * that get pages are registered (the only ones UFFDIO_COPY fills with
 * anonymous pages), and all of them are let go of before anything else
 * writes into the process (its parent images, its parent's pages, the
 * tracer): a write through process_vm_writev or /proc/PID/mem into a
 * registered page not yet in fails (EFAULT: the fd takes faults in user
 * mode only, so such a write never waits for us). So a page that is
 * there already (-EEXIST) goes in through process_vm_writev, alone, and
 * so do runs outside the registered mappings; UFFDIO_COPY is given one
 * mapping at a time (it fails with -ENOENT across two; where the kernel
 * has split one of the record's, page by page up to the split). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/mm-fill.h"
#include "engine/proc.h"
#include "engine/uffd.h"
#include "util/log.h"
#include "util/util.h"

#define MIN_PAGES 2048 /* 8 MiB: below, four remote calls cost more than they save */

bool fill_uffd_wanted(const struct mm_rec *m)
{
	const char *env = getenv("STASIS_FILL_UFFD");
	if (env && streq(env, "0"))
		return false;
	return (env && streq(env, "1")) || m->pages >= MIN_PAGES;
}

/* Not where the original had huge pages, or asked for them: there
 * process_vm_writev faults 2 MiB pages in at once, where UFFDIO_COPY
 * would make small ones for mm-thp.c to copy again. */
static bool registrable(const struct vma_rec *v)
{
	return v->kind == VMA_ANON && !v->shared && !v->keep && v->filled && !v->thp && !(v->vmflags & VMF_HUGEPAGE);
}

static void unregister_all(int uffd, const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		struct uffdio_range g = { v->start, v->end - v->start };
		if (registrable(v))
			(void)ioctl(uffd, UFFDIO_UNREGISTER, &g);
	}
}

int fill_uffd_make(struct remote *r, pid_t tid, int pidfd, int ctl, int tfd, const struct mm_rec *m, int *ret_uffd)
{
	const char *what = "";
	int uffd = -1, e = uffd_open_bare(r, tid, ctl, tfd, pidfd, &uffd, &what);
	*ret_uffd = -1;
	/* An fd sent and not received would be the next one received. */
	if (e < 0 && streq(what, "pass"))
		return log_error_errno(e, "pid %d: cannot pass /dev/userfaultfd in: %m", r->pid);
	if (e < 0) {
		log_debug("pid %d: no userfaultfd to fill its memory (%s: %s); process_vm_writev instead", r->pid,
			  what, strerror(-e));
		return 0;
	}
	size_t n = 0;
	for (size_t i = 0; e >= 0 && i < m->nvmas; i++)
		if (registrable(&m->vmas[i]) && (e = uffd_register(uffd, m->vmas[i].start,
								   m->vmas[i].end - m->vmas[i].start)) >= 0)
			n++;
	if (e < 0 || !n) {
		if (e < 0)
			log_debug("pid %d: cannot register its memory with a userfaultfd (%s); process_vm_writev "
				  "instead", r->pid, strerror(-e));
		fill_uffd_release(uffd, m);
		return 0;
	}
	*ret_uffd = uffd;
	return 0;
}

void fill_uffd_release(int uffd, const struct mm_rec *m)
{
	if (uffd < 0)
		return;
	unregister_all(uffd, m);
	close(uffd);
}

/* The record's mapping at addr, or NULL (both sorted by address). */
static const struct vma_rec *vma_at(const struct mm_rec *m, uint64_t addr)
{
	size_t lo = 0, hi = m->nvmas;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr >= m->vmas[mid].end)
			lo = mid + 1;
		else if (addr < m->vmas[mid].start)
			hi = mid;
		else
			return &m->vmas[mid];
	}
	return NULL;
}

/* Where UFFDIO_COPY cannot go: a page there already, or a mapping not
 * registered. */
static int write_over(struct remote *r, const uint8_t *buf, uint64_t dst, uint64_t len)
{
	struct iovec l = { (void *)buf, len }, rm = { (void *)(uintptr_t)dst, len };
	ssize_t n = process_vm_writev(r->pid, &l, 1, &rm, 1, 0);
	int e = n < 0 ? -errno : (uint64_t)n == len ? 0 : -EFAULT;
	return e == -EPERM || e == -ENOSYS ? remote_write(r, dst, buf, len) : e;
}

/* One page UFFDIO_COPY refused with the rest of its run: it lies in one
 * mapping of the kernel's, so -EEXIST means it is there already and
 * -ENOENT that its mapping is not registered (the record's mapping made
 * of two of the kernel's): neither waits for us there. */
static int put_page(int uffd, struct remote *r, const uint8_t *buf, uint64_t dst)
{
	struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)buf, .len = PAGE_SIZE };
	int e = ioctl(uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
	return e == -EEXIST || e == -ENOENT ? write_over(r, buf, dst, PAGE_SIZE) : e;
}

/* Part of one registered mapping; anything else failing fails: a page
 * not in can only go in through the userfaultfd. */
static int put_in(int uffd, struct remote *r, const uint8_t *buf, uint64_t dst, uint64_t len)
{
	uint64_t done = 0;
	while (done < len) {
		struct uffdio_copy c = { .dst = dst + done, .src = (uint64_t)(uintptr_t)(buf + done), .len = len - done };
		int e = ioctl(uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
		if (c.copy > 0)
			done += (uint64_t)c.copy;
		if ((e == -EEXIST || e == -ENOENT) && c.copy <= 0) {
			if ((e = put_page(uffd, r, buf + done, dst + done)) < 0)
				return e;
			done += PAGE_SIZE;
		} else if (e < 0 && e != -EAGAIN && e != -EEXIST && e != -ENOENT) {
			return e;
		}
	}
	return 0;
}

/* One run of memory, mapping by mapping (UFFDIO_COPY stays in one). */
static int put_run(int uffd, struct remote *r, const struct mm_rec *m, const uint8_t *buf, uint64_t dst,
		   uint64_t len)
{
	while (len > 0) {
		const struct vma_rec *v = vma_at(m, dst);
		uint64_t n = v && v->end - dst < len ? v->end - dst : len;
		int e = v && registrable(v) ? put_in(uffd, r, buf, dst, n) : write_over(r, buf, dst, n);
		if (e < 0)
			return e;
		buf += n, dst += n, len -= n;
	}
	return 0;
}

int fill_uffd_put(int uffd, struct remote *r, const struct mm_rec *m, const uint8_t *buf, const struct iovec *rem,
		  size_t k, void **at)
{
	for (size_t q = 0; q < k; q++) {
		*at = rem[q].iov_base;
		int e = put_run(uffd, r, m, buf, (uint64_t)(uintptr_t)rem[q].iov_base, rem[q].iov_len);
		if (e < 0)
			return e;
		buf += rem[q].iov_len;
	}
	return 0;
}
