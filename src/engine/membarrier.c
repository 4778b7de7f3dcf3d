/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* membarrier(2) registrations of a process (per address space). No
 * /proc file shows them and MEMBARRIER_CMD_QUERY says only what the
 * kernel supports; but each private expedited command fails with EPERM
 * in a process that did not register for it. So the dump runs each of
 * them once in the process (a memory barrier on the CPUs running its
 * threads: none, they are stopped) and the restore registers again what
 * worked. A registration for GLOBAL_EXPEDITED has no such command (any
 * process may issue it) and is not seen: it is lost (README). */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>

#include "engine/task.h"
#include "util/log.h"

static const struct {
	unsigned bit;
	int probe, reg;
} kinds[] = {
	{ TASK_MB_PRIVATE, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED },
	{ TASK_MB_SYNC_CORE, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
	  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE },
	{ TASK_MB_RSEQ, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ },
};

int membarrier_dump_remote(struct remote *r, pid_t tid, uint32_t *ret)
{
	uint32_t got = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		long e = remote_syscall(r, tid, SYS_membarrier, kinds[i].probe, 0, 0);
		if (e == 0)
			got |= kinds[i].bit;
		else if (e != -EPERM && e != -EINVAL && e != -ENOSYS)
			return (int)e;
	}
	*ret = got;
	return 0;
}

int membarrier_restore(struct remote *r, pid_t tid, uint32_t mb)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!(mb & kinds[i].bit))
			continue;
		long e = remote_syscall(r, tid, SYS_membarrier, kinds[i].reg, 0, 0);
		if (e < 0)
			return log_error_errno((int)e, "pid %d: cannot register for membarrier command %d again: %m",
					       r->pid, kinds[i].probe);
	}
	return 0;
}
