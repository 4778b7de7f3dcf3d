/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoint of one process with all its threads. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

struct image;

struct dump_opts {
	bool leave_running;
	bool tcp_close; /* established TCP connections are restored closed */
	/* Set by a runtime adapter: the manifest's type, its "container"
	 * object, and the runtime's own files (JSON) written into the image. */
	const char *type;
	json_t *container;
	const char *const *file_names;
	json_t *const *files;
	size_t nfiles;
	/* Runs with the tree still frozen, before the manifest is written:
	 * e.g. the container's filesystem changes go into the image then. */
	int (*before_commit)(struct image *img, void *arg);
	void *arg;
};

/* Writes the image into dir. On failure the process is left running as
 * it was, and no manifest is written. */
int dump_process(pid_t pid, const char *dir, const struct dump_opts *o);

struct inherit_fd;
struct restore_opts {
	bool detach;
	const struct inherit_fd *inherit;
	size_t ninherit;
	const char *stub_path;
	bool pidns; /* restore_pidns() only */
	/* The root's stub was started by a container runtime, with the fd
	 * transport on FDPASS_STUB_FD: seize it instead of starting one; the
	 * tree's external fds are the stub's own 0-2 (the runtime's). */
	bool adopt;
	int ctl; /* adopt: our end of that transport, or -1: the stub connects
		  * to us (an abstract socket in its network namespace) */
	const char *stub_file; /* adopt: the stub's file in the container, removed */
};

/* Restores the image in dir. Returns the pid of the restored process; on
 * failure nothing it created is left behind. */
int restore_process(const char *dir, const struct restore_opts *o, pid_t *ret_pid);
/* The same in a new pid namespace (restore-pidns.c). ret_root: the root's
 * pid as the caller sees it; ret_init: the namespace's init, our child,
 * which exits with the root's status once the tree is gone. */
int restore_pidns(const char *dir, const struct restore_opts *o, pid_t *ret_root, pid_t *ret_init);
