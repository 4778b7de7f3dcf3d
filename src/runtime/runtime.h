/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Container runtime adapters (DESIGN.md §3): one file and one table entry
 * per runtime. An adapter finds the container and describes it for the
 * image (locate), and on restore asks its runtime for a fresh container of
 * the same configuration whose first process is the stasis stub
 * (create_sandbox), then keeps or removes it (finish). The engine does the
 * rest, from inside the container's pid and network namespaces. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "engine/dump.h"

/* A container being restored into. */
struct rt_sandbox {
	char id[256];
	pid_t pid;               /* the stub: the container's first process, host pid */
	char bundle[PATH_MAX];   /* runc: our bundle directory, removed on failure */
	char stub_file[PATH_MAX]; /* the stub's copy in the container's root (host path) */
	char stub_in[64];        /* the same, as the container sees it */
	char dir[PATH_MAX];      /* the image */
	bool created;            /* the runtime made it: remove it on failure */
};

struct rt_ops {
	const char *name;
	/* The container's init (host pid) and what the image keeps about it:
	 * the manifest's "container" object and the runtime's files. */
	int (*locate)(const char *id, const char *ns, pid_t *ret_pid, json_t **ret_meta, json_t **ret_config);
	/* A new container (named new_id) from the image's description, its
	 * first process the stub at stub_path, with stub_tfd as its fd 3. */
	int (*create_sandbox)(const json_t *meta, const json_t *config, const char *new_id, const char *stub_path,
			      int stub_tfd, struct rt_sandbox *ret);
	/* ok: the restore succeeded (remove the stub's file); else remove the
	 * container. */
	void (*finish)(struct rt_sandbox *sb, bool ok);
	/* Optional, at dump with the tree frozen, from inside the container's
	 * pid namespace: saves more into the image (arg: the description). */
	int (*before_commit)(struct image *img, void *arg);
	/* The runtime gives the stub our transport as its fd 3 (runc
	 * --preserve-fds); else the stub connects to us itself. */
	bool uses_fd;
};

const struct rt_ops *rt_find(const char *name);
/* Checkpoint and restore of a container of the given runtime. */
/* ns: the runtime's namespace (containerd), or NULL. */
int rt_dump(const struct rt_ops *ops, const char *id, const char *ns, const char *dir, struct dump_opts *o);
int rt_restore(const char *dir, const char *type, const char *new_id, struct restore_opts *o, pid_t *ret_pid);

/* runtime-util.c */
/* Runs argv, returns its stdout (NUL-terminated) in *ret_out (may be NULL
 * when not wanted); a nonzero exit is an error carrying its stderr. */
int rt_run(char *const argv[], char **ret_out);
/* Runs fn(arg) in a child that has joined the pid and network namespaces
 * of host pid `pid`, with a mount namespace of its own whose /proc shows
 * that pid namespace; the container's files are at /proc/1/root there. */
int rt_in_container(pid_t pid, int (*fn)(void *), void *arg);
int rt_copy_file(const char *from, const char *to, mode_t mode);
/* Waits for our child: 0 when it exited 0, -EIO for another status, -EINTR
 * when a signal ended it, -errno when it cannot be waited for. */
int rt_wait(pid_t pid);
/* The capabilities we hold (our bounding set), up to number max, as names
 * with the given prefix ("CAP_" for OCI, "" for Docker): a runtime cannot
 * give the stub more than we have. */
json_t *rt_our_caps(const char *prefix, int max);
