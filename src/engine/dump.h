/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's entry points for the runtime layer: checkpoint and restore
 * of a process tree, given an image object the runtime created or opened. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "engine/inherit-fd.h"
#include "engine/stats.h"

struct image;

struct dump_opts {
	bool leave_running;
	bool tcp_close; /* established TCP connections are restored closed */
	bool tcp_established; /* established TCP connections are kept (and locked: netlock.h) */
	bool unix_close;      /* unix stream connections to a process outside the tree: restored closed */
	bool unix_reconnect;  /* ...and those to a named socket: connected to that name again */
	/* Set by the runtime layer: the manifest's type and, for a
	 * container, its "container" object. */
	const char *type;
	json_t *container;
	/* Runs with the tree still frozen, before the manifest is written:
	 * e.g. the container's filesystem changes go into the image then. */
	int (*before_commit)(struct image *img, void *arg);
	void *arg;
	const char *fsroot; /* where the processes' paths are (fsroot.h); NULL: ours */
	struct dump_stats *stats; /* filled when not NULL (stats_alloc) */
	int compress_level;       /* --compress: zstd level of the page data; 0: none */
	/* predump.h: --pre-dump (the tree carries on, its writes are tracked)
	 * and --parent DIR (save only what changed since that image). */
	bool pre_dump;
	const char *parent;
};

/* Writes the checkpoint of pid and its descendants into img (made by
 * image_create) and commits it. On failure the processes are left running
 * as they were, the files written are removed (image_rollback) and no
 * manifest is written; the caller still owns img. */
int dump_process(struct image *img, pid_t pid, const struct dump_opts *o);

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
	const char *fsroot;    /* where the processes' paths are (fsroot.h); NULL: ours */
	bool tcp_established; /* established TCP connections come back (and are locked: netlock.h) */
	/* --lazy (lazy.h): private anonymous memory is filled after the tree
	 * runs, by the filler at the other end of lazy_sock (lazy_start). */
	bool lazy, wait_lazy;
	int lazy_sock;
	struct restore_stats *stats; /* filled when not NULL (stats_alloc) */
};

/* Restores the image (opened by image_open; the caller owns it). Returns
 * the pid of the restored root; on failure nothing it created is left
 * behind. */
int restore_process(struct image *img, const struct restore_opts *o, pid_t *ret_pid);
/* The same in a new pid namespace (restore-pidns.c). ret_root: the root's
 * pid as the caller sees it; ret_init: the namespace's init, our child,
 * which exits with the root's status once the tree is gone. */
int restore_pidns(struct image *img, const struct restore_opts *o, pid_t *ret_root, pid_t *ret_init);
