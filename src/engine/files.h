/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File descriptors: regular files (including ones deleted while open, whose
 * content is saved), directories, harmless character devices, and
 * "external" descriptors (a terminal, pipe or socket on fds 0-2, leading
 * outside the process) which are reattached to the restorer's own fds. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/inherit-fd.h"
#include "engine/remote.h"
#include "engine/shobj.h"
#include "engine/sockets.h"
#include "image/image.h"

#define MAX_FDS 65536

enum fd_kind {
	FD_REG, FD_DIR, FD_CHR, FD_EXTERNAL, FD_EVENTFD, FD_SIGNALFD, FD_TIMERFD, FD_EPOLL, FD_PIPE, FD_SOCKET, FD_INOTIFY,
	FD_KIND_MAX
};

/* State of the anonymous-inode fds, from fdinfo (files-anon.c). */
struct fd_anon {
	uint64_t count;     /* eventfd counter */
	uint64_t semaphore; /* eventfd EFD_SEMAPHORE */
	uint64_t sigmask;   /* signalfd */
	uint64_t clockid, ticks, value_ns, interval_ns; /* timerfd */
};

#define MAX_EPOLL_TARGETS 65536
struct epoll_target {
	int tfd;
	uint32_t events;
	uint64_t data;
};

#define MAX_INOTIFY_WATCHES 65536
struct inotify_watch {
	int wd;
	uint32_t mask;   /* as fdinfo shows it (IN_ONESHOT, IN_EXCL_UNLINK kept) */
	uint64_t ino, dev; /* the watched inode (dev as userspace dev_t) */
	char *path;      /* where restore finds it again */
	/* dump only: the file handle fdinfo shows */
	int handle_type;
	unsigned handle_bytes;
	unsigned char handle[128];
};

struct fd_rec {
	int fd;
	enum fd_kind kind;
	char *path;       /* link target as /proc shows it */
	uint32_t flags;   /* open flags from fdinfo, O_CLOEXEC included */
	uint64_t pos;
	int dup_of;       /* -1, or an earlier fd sharing this open file description */
	uint64_t desc;    /* the open file description, numbered across the tree */
	bool shared;      /* desc is held by more than one process */
	bool deleted;     /* a file deleted while open, or a memfd: a shared memory object (shmem.h) */
	struct shobj obj; /* deleted: the object and its saved content */
	struct fd_anon anon;
	struct epoll_target *tgts; /* epoll: the watched fds */
	size_t ntgts;
	uint64_t pipe_id;   /* pipe: inode, shared by both ends */
	uint32_t pipe_size; /* pipe: capacity (F_GETPIPE_SZ) */
	struct sk_rec *sk;  /* socket (sockets.h) */
	struct inotify_watch *watches; /* inotify: in ascending wd order */
	size_t nwatches;
	char *data;
};

struct files_rec {
	struct fd_rec *fds;
	size_t n;
};


void files_rec_free(struct files_rec *f);
/* The kind's name as the image writes it ("reg", "pipe", ...). */
const char *fd_kind_name(const struct fd_rec *o);

/* files-anon.c: eventfd, signalfd, timerfd. */
bool anon_kind(const char *link, enum fd_kind *ret);
int anon_parse_fdinfo(const char *buf, size_t len, enum fd_kind kind, struct fd_anon *ret);
long anon_restore(struct remote *r, pid_t tid, const struct fd_rec *o);
/* pipes.c: pipes with both ends in the tree, and the bytes in them. */
int pipes_dump_data(struct image *img, pid_t pid, struct files_rec *f);
/* Makes o's pipe in the restorer, sized and filled; ends[0] reads. */
int pipe_make(struct image *img, const struct fd_rec *o, int ends[2]);
/* Writes the bytes saved for o's pipe (or FIFO) into wfd. */
int pipe_fill(struct image *img, const struct fd_rec *o, int wfd);
bool pipe_is_read_end(const struct fd_rec *o);
/* files-anon.c: epoll, restored after every fd it may watch. */
int epoll_parse_fdinfo(const char *buf, size_t len, struct fd_rec *o);
int epoll_check(pid_t pid, const struct files_rec *f, const struct fd_rec *o);
int epoll_to_json(const struct fd_rec *o, json_t *j);
int epoll_from_json(const json_t *j, struct fd_rec *o);
int epoll_restore_targets(struct remote *r, pid_t tid, const struct fd_rec *o);
/* inotify.c: inotify instances and their watches (by path). */
int inotify_parse_fdinfo(const char *buf, size_t len, struct fd_rec *o);
int inotify_collect(int procfd, pid_t pid, const char *buf, size_t len, struct fd_rec *o);
void inotify_free(struct fd_rec *o);
int inotify_to_json(const struct fd_rec *o, json_t *j);
int inotify_from_json(const json_t *j, struct fd_rec *o);
long inotify_restore(struct remote *r, pid_t tid, const struct fd_rec *o);
/* Lists and classifies the fds; refuses unsupported ones (naming pid, fd
 * and kind) before anything is changed. */
/* sk_flags: SK_TCP_CLOSE (sockets.h) or 0. */
int files_collect(int procfd, pid_t pid, unsigned sk_flags, struct files_rec *f);

/* files-tree.c: the fds of the whole tree, side by side. */
struct files_proc {
	pid_t pid;
	struct files_rec *f;
};
/* Numbers the open file descriptions across the tree (kcmp), marks dups
 * and shared ones, and decides which pipes lead outside: those are kept
 * as external on fds 0-2 of the root (and fds sharing them), refused
 * elsewhere. v[0] is the root; root_stdio: its fds 0-2 are external
 * whatever they are (a container's, set up by its runtime). */
int files_link(struct files_proc *v, size_t n, bool root_stdio);
/* Saves the content of deleted files into the image. */
int files_dump_data(struct image *img, int procfd, pid_t pid, struct files_rec *f);
int files_to_json(const struct files_rec *f, json_t **ret);
int files_from_json(const json_t *j, struct files_rec *f);

/* Restore state shared by all processes of the tree. */
struct files_ctx {
	struct image *img;
	int ctl; /* our end of the fd transport (fdpass.h) */
	const struct inherit_fd *inh;
	size_t ninh;
	const struct files_proc *all; /* every process's fds: a pipe finds its other end */
	const char *fsroot; /* where the processes' paths are (fsroot.h) */
	size_t nall;
	struct made_fd {
		uint64_t desc;
		int fd; /* ours */
	} *made;  /* descriptions made so far, for the processes still to come */
	size_t nmade;
};
void files_ctx_done(struct files_ctx *c);
/* The table of things made: our fd for key, or -1; adding takes fd over
 * (closing it on failure). Keys of fd descriptions are their desc; others
 * (shmem.c) set the top bit. */
int files_ctx_find(const struct files_ctx *c, uint64_t key);
int files_ctx_add(struct files_ctx *c, uint64_t key, int fd);
/* Restores f into the process; tfd is its end of the transport, pidfd
 * its pidfd (to take fds other processes share); root: the tree's root,
 * whose external fds come from us. */
int files_restore(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f, int tfd, int pidfd,
		  bool root);
