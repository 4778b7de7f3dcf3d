/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/freezer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* The paths of pid's cgroups in the v2 hierarchy (v2) and the v1 freezer
 * (v1), "" where it has none: one read of /proc/PID/cgroup for both. */
static int cgroups_of(pid_t pid, char v2[PATH_MAX], char v1[PATH_MAX])
{
	char path[64], line[PATH_MAX + 64];
	_cleanup_free_ char *text = NULL;
	size_t len, pos = 0;
	v2[0] = v1[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	int r = proc_read(AT_FDCWD, path, &text, &len);
	if (r < 0)
		return r;
	while (proc_next_line(text, len, &pos, line, sizeof(line))) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*a = *b = 0; /* line: hierarchy id, a + 1: controllers, b + 1: path */
		if (streq(line, "0") && a + 1 == b && !v2[0])
			snprintf(v2, PATH_MAX, "%s", b + 1);
		else if (strstr(a + 1, "freezer") && !v1[0])
			snprintf(v1, PATH_MAX, "%s", b + 1);
	}
	return 0;
}

int freezer_find(pid_t root, struct freezer *ret)
{
	char mine[2][PATH_MAX], parent[2][PATH_MAX], path[64];
	struct proc_stat st;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", root);
	if (proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_stat(buf, len, &st) < 0)
		return 0;
	/* A container's init has its parent outside our pid namespace (ppid
	 * 0): compare with our own cgroup then. */
	if (cgroups_of(root, mine[0], mine[1]) < 0 || cgroups_of(st.ppid ? st.ppid : getpid(), parent[0], parent[1]) < 0)
		return 0;
	static const struct {
		bool v2;
		const char *mount, *file;
	} kinds[] = { { true, "/sys/fs/cgroup/unified", "cgroup.freeze" }, { true, "/sys/fs/cgroup", "cgroup.freeze" },
		      { false, "/sys/fs/cgroup/freezer", "freezer.state" } };
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char file[PATH_MAX * 2];
		const char *m = mine[!kinds[i].v2], *p = parent[!kinds[i].v2];
		if (!m[0] || !p[0] || streq(m, p) || streq(m, "/"))
			continue;
		snprintf(file, sizeof(file), "%s%s/%s", kinds[i].mount, m, kinds[i].file);
		if (access(file, W_OK) < 0)
			continue;
		snprintf(ret->dir, sizeof(ret->dir), "%s%s", kinds[i].mount, m);
		ret->v2 = kinds[i].v2;
		return 1;
	}
	return 0;
}

static bool is_frozen(const struct freezer *f)
{
	char path[PATH_MAX + 32];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", f->dir, f->v2 ? "cgroup.events" : "freezer.state");
	if (read_file_at(AT_FDCWD, path, 4096, &buf, &len) < 0)
		return false;
	return f->v2 ? strstr(buf, "frozen 1") != NULL : startswith(buf, "FROZEN");
}

int freezer_set(struct freezer *f, bool frozen)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", f->dir, f->v2 ? "cgroup.freeze" : "freezer.state");
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	const char *v = f->v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
	if (frozen)
		f->frozen = true; /* before: a guardian thaws what may be frozen */
	if (fd < 0 || write_all(fd, v, strlen(v)) < 0)
		return log_error_errno(-errno, "cannot %s cgroup %s: %m", frozen ? "freeze" : "thaw", f->dir);
	if (!frozen) {
		f->frozen = false;
		return 0;
	}
	/* Up to 5 s, from 0.25 ms doubling to 10 ms: a small cgroup is
	 * frozen within a millisecond or two. */
	uint64_t end = now_ns() + 5000000000ull;
	for (long ns = 250000; !is_frozen(f); ns = ns < 5000000 ? ns * 2 : 10000000) {
		if (now_ns() > end) {
			freezer_set(f, false);
			return log_error_errno(-ETIMEDOUT, "cgroup %s did not freeze within 5 s", f->dir);
		}
		nanosleep(&(struct timespec){ 0, ns }, NULL);
	}
	return 0;
}
