/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where the escape of a remote call (struct remote: a "syscall; ret"
 * gadget and a "jmp ." spin) is likely to be found in a process: at the
 * same place of the same file as in our own mapping of it, libc most
 * often. remote_find_escape() otherwise reads the process's code from
 * /proc/PID/mem until it finds them (~450 KiB into libc here, seven
 * reads and a 64 KiB buffer to fault in). Only a hint: the bytes there
 * are read in the process and checked before they are used, so any file
 * that is not ours (a container's libc) costs a read and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/mm.h"
#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/util.h"

static const uint8_t gadget[] = { 0x0f, 0x05, 0xc3 }, spin[] = { 0xeb, 0xfe };

/* Our own executable file mappings, read once per run. */
static struct vma *ours;
static size_t nours;
static bool ours_read;

static void read_ours(void)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	ours_read = true;
	if (proc_read(AT_FDCWD, "/proc/self/maps", &buf, &len) < 0 || proc_parse_smaps(buf, len, &ours, &nours) < 0)
		nours = 0;
}

/* Where pattern p is first in our mapping o, as an address in v; 0: not
 * in it, or not the same bytes in the process. */
static uint64_t try_at(struct remote *r, const struct vma *o, const struct vma_rec *v, const uint8_t *p, size_t n)
{
	const uint8_t *at = memmem((const void *)o->start, o->end - o->start, p, n);
	uint8_t there[4];
	if (!at)
		return 0;
	uint64_t addr = v->start + ((uint64_t)at - o->start);
	if (addr + n > v->end || remote_read(r, addr, there, n) < 0 || memcmp(there, p, n) != 0)
		return 0;
	return addr;
}

void mm_escape_hint(const struct mm_rec *m, struct remote *r)
{
	if (!ours_read)
		read_ours();
	for (size_t i = 0; i < m->nvmas && (!r->gadget || !r->spin); i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_FILE || !(v->prot & PROT_EXEC) || !v->path)
			continue;
		for (size_t k = 0; k < nours; k++) {
			const struct vma *o = &ours[k];
			if (!(o->prot & PROT_EXEC) || !(o->prot & PROT_READ) || o->pgoff != v->pgoff ||
			    o->end - o->start != v->end - v->start || !streq(o->path, v->path))
				continue;
			r->gadget = r->gadget ? r->gadget : try_at(r, o, v, gadget, sizeof(gadget));
			r->spin = r->spin ? r->spin : try_at(r, o, v, spin, sizeof(spin));
			break;
		}
	}
}
