/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The freezer of a cgroup the tree has to itself (a container's, or one
 * made for the job): frozen while the tree is seized, so that no process
 * can fork or exit between the first seize and the last. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct freezer {
	char dir[PATH_MAX]; /* the cgroup's directory */
	bool v2;            /* cgroup.freeze (v2) or freezer.state (v1) */
	bool frozen;        /* by us: set before freezing, cleared once thawed */
};

/* 1 and *ret filled when root's cgroup (v2, else the v1 freezer) is not
 * its parent's, 0 when the tree has none of its own. */
int freezer_find(pid_t root, struct freezer *ret);
int freezer_set(struct freezer *f, bool frozen);
