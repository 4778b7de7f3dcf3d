/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/stats.h"

#include <stddef.h>
#include <sys/mman.h>

void *stats_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void stats_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

/* Apart from util/log.h, whose level names clash with syslog.h's. */
#include <syslog.h>

void stats_syslog(const char *msg)
{
	openlog("stasis", LOG_PID, LOG_DAEMON);
	syslog(LOG_ERR, "%s", msg);
	closelog();
}
