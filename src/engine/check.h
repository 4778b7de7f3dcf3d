/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stasis check --pid: what a dump of a tree would refuse or lose, found
 * by the dump's own collection and checks, without seizing, freezing or
 * changing anything in the processes. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "engine/dump.h"

/* Filled by check_process; may live in memory shared with a child (a
 * container's check runs in its namespaces). */
struct check_report {
	unsigned refused; /* findings that make the dump fail */
	unsigned lost;    /* findings the dump goes through without */
	unsigned procs, fds;
	/* Called with each finding, in the dump's own words. */
	void (*print)(bool refused, const char *msg);
};

/* Looks at pid and its descendants as dump_process would (o: the same
 * options). Returns 0 when it could look (findings in rep), -errno
 * (logged) when not at all: no such process. The tree runs on meanwhile,
 * so what changes during the look may be seen half. */
int check_process(pid_t pid, const struct dump_opts *o, struct check_report *rep);
