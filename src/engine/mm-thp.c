/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Transparent huge pages where the original had them. The dump records
 * per mapping how much of it was in huge pages (AnonHugePages in smaps:
 * vma_rec.thp, "thp" in mm-PID.json). A restore fills pages in 4 KiB
 * wherever the mapping is not eligible for THP while it is filled (no
 * MADV_HUGEPAGE on it and transparent_hugepage "madvise", or any lazy
 * fill: UFFDIO_COPY makes small pages), and the process's first touch of
 * 4 KiB pages filled by someone else costs again (DESIGN.md §7). So once
 * such a mapping is full, the kernel collapses its 2 MiB aligned part
 * (MADV_COLLAPSE, Linux 6.1+): that sets no flag on the mapping (as
 * MADV_HUGEPAGE would, which no advice can take back to "neither"),
 * honours an "nh" (MADV_NOHUGEPAGE) mapping, and skips what is huge
 * already (a MADV_HUGEPAGE mapping whose pages MADV_POPULATE_WRITE made
 * huge). A collapse that fails (no free huge page) leaves small pages:
 * slower, never wrong, so it is logged at -v only. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "engine/mm.h"
#include "util/log.h"
#include "util/util.h"

#define HPAGE (2ULL << 20)

bool mm_thp_range(const struct vma_rec *v, uint64_t *ret_start, uint64_t *ret_len)
{
	uint64_t a = (v->start + HPAGE - 1) & ~(HPAGE - 1), e = v->end & ~(HPAGE - 1);
	if (v->kind != VMA_ANON || v->shared || !v->thp || v->keep || (v->vmflags & VMF_NOHUGEPAGE) || a >= e)
		return false;
	*ret_start = a;
	*ret_len = e - a;
	return true;
}

int mm_thp_restore(struct remote *r, pid_t tid, const struct mm_rec *m)
{
	uint64_t t0 = now_ns(), done = 0;
	for (size_t i = 0; i < m->nvmas; i++) {
		uint64_t a, len;
		if (!mm_thp_range(&m->vmas[i], &a, &len))
			continue;
		long ret = remote_syscall(r, tid, SYS_madvise, a, len, MADV_COLLAPSE);
		if (ret < 0)
			log_debug("pid %d: no huge pages at %" PRIx64 "-%" PRIx64 " (MADV_COLLAPSE: %s); small ones "
				  "stay", r->pid, a, a + len, strerror((int)-ret));
		else
			done += len;
	}
	if (done)
		log_debug("pid %d: %" PRIu64 " MiB in huge pages again (%.1f ms)", r->pid, done >> 20,
			  (double)(now_ns() - t0) / 1e6);
	return 0;
}
