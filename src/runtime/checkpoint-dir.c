/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where a dump goes when the user gives no -D: one new directory per
 * target and time under a root of our own, as the seeds' commands expect
 * (`stasis dump --type containerd --namespace moby --id ID` names no
 * directory). The root and its missing parents are made 0700: an image is
 * a program (DESIGN.md §5a), nobody else may read or plant one. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "runtime/runtime.h"
#include "util/log.h"
#include "util/util.h"

const char *rt_checkpoint_root(void)
{
	const char *env = getenv("STASIS_CHECKPOINT_ROOT");
	return env && *env ? env : RT_CHECKPOINT_ROOT;
}

/* mkdir -p, 0700 for each directory it makes. */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

/* The target's part of the name: the pid, or the id as given with
 * anything but [A-Za-z0-9_.-] made '_' (a name never becomes a path). */
static void target_name(const struct rt_target *t, char *buf, size_t size)
{
	if (!t->id) {
		snprintf(buf, size, "%d", (int)t->pid);
		return;
	}
	size_t n = 0;
	for (const char *p = t->id; *p && n + 1 < size && n < 64; p++)
		buf[n++] = isalnum((unsigned char)*p) || strchr("_.-", *p) ? *p : '_';
	buf[n] = 0;
}

int rt_default_dir(const struct rt_ops *ops, const struct rt_target *t, char *buf, size_t size)
{
	const char *root = rt_checkpoint_root();
	char name[80], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int r = make_parents(root);
	if (r < 0)
		return log_error_errno(r, "cannot create the checkpoint root %s: %m; give -D DIR, or set "
				       "STASIS_CHECKPOINT_ROOT", root);
	target_name(t, name, sizeof(name));
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	/* Two dumps of one target within a second get -2, -3, ... */
	for (int i = 1; i < 100; i++) {
		struct stat st;
		int n = i == 1 ? snprintf(buf, size, "%s/%s-%s-%s", root, ops->name, name, stamp)
			       : snprintf(buf, size, "%s/%s-%s-%s-%d", root, ops->name, name, stamp, i);
		if (n < 0 || (size_t)n >= size)
			return log_error_errno(-ENAMETOOLONG, "checkpoint root %s: path too long", root);
		if (lstat(buf, &st) < 0 && errno == ENOENT)
			return 0;
	}
	return log_error_errno(-EEXIST, "too many checkpoints of %s named %s in %s", name, stamp, root);
}
