/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File descriptors: the generic walk and the operations table of the fd
 * kinds.
 *
 * Every fd of a process is a struct fd_rec: what all kinds share (number,
 * open flags, offset, open file description) and a pointer to its kind,
 * a struct fd_ops. What only one kind keeps (a pipe's inode, a socket's
 * queue, epoll's targets) is that kind's own record behind fd_rec.state,
 * defined in the kind's file and unknown to everyone else.
 *
 * Where things are (docs/ARCHITECTURE-fds.md has the table):
 *   files.c          the table of kinds, dump (collect, save, JSON)
 *   files-tree.c     the fds of the whole tree side by side (shared
 *                    descriptions, dups)
 *   files-restore.c  restore: the table of things made, placing fds
 *   files-reg.c      regular files (also deleted ones), directories,
 *                    harmless character devices
 *   files-ext.c      fds 0-2 that lead outside the process
 *   pipes.c          pipes and FIFOs
 *   sockets.c        sockets (sk-unix.c, sk-inet.c: the families)
 *   tty.c            pty masters and slaves, /dev/tty
 *   eventfd.c, signalfd.c, timerfd.c, epoll.c, inotify.c
 *   pidfd.c          pidfds (of live and of reaped processes)
 *   files-path.c     O_PATH fds (also on a symlink itself)
 *   nsfd.c           namespace fds (the entries of /proc/PID/ns)
 *
 * Adding a kind: one file defining `const struct fd_ops fd_NAME_ops`,
 * one line in FD_KINDS (files.c), its line in meson.build. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "engine/inherit-fd.h"
#include "engine/remote.h"
#include "image/image.h"
#include "image/json.h"

#define MAX_FDS 65536

/* files_collect flags. */
#define SK_TCP_CLOSE 1       /* --tcp-close: keep a TCP connection as a closed socket (sockets.c) */
#define SK_TCP_ESTABLISHED 2 /* --tcp-established: keep it, through TCP repair mode (sk-tcp.c) */
#define FILES_CHECK 8        /* stasis check: an fd refused (logged) is skipped, the others looked at */
#define SK_UNIX_CLOSE 16     /* --unix-close: a unix connection leaving the tree comes back closed (sk-unix-ext.c) */
#define SK_UNIX_RECONNECT 32 /* --unix-reconnect: ... to a named socket, connected to it again */

struct fd_ops;

/* Who gets SIGIO for the description (files-owner.c): F_GETOWN_EX's
 * type and pid (0: nobody), F_GETSIG's signal (0: SIGIO). */
struct fd_owner {
	int type, pid, sig;
};

struct fd_rec {
	int fd;
	const struct fd_ops *ops; /* the kind */
	char *path;       /* link target as /proc shows it */
	uint32_t flags;   /* open flags from fdinfo, O_CLOEXEC included */
	uint64_t pos;
	int dup_of;       /* -1, or an earlier fd sharing this open file description */
	uint64_t desc;    /* the open file description, numbered across the tree */
	bool shared;      /* desc is held by more than one process */
	void *state;      /* the kind's own record (owned; NULL when it keeps none) */
	struct fd_owner owner;
};

struct files_rec {
	struct fd_rec *fds; /* in ascending fd order */
	size_t n;
};


/* The fds of the whole tree, side by side. */
struct files_proc {
	pid_t pid;
	struct files_rec *f;
};

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

/* --- the entry points (dump.c, process.c, restore.c) --- */

void files_rec_free(struct files_rec *f);
/* Lists and classifies the fds; refuses unsupported ones (naming pid, fd
 * and kind) before anything is changed. flags: SK_TCP_CLOSE or 0. */
int files_collect(int procfd, pid_t pid, unsigned flags, struct files_rec *f);
/* One fd, classified by its kind as files_collect does (sk-scm.c: an fd
 * in flight, seen through our own copy in /proc/self). */
int files_collect_fd(int procfd, pid_t pid, int fd, unsigned flags, struct fd_rec *o);
/* files-tree.c. Numbers the open file descriptions across the tree
 * (kcmp), marks dups and shared ones, and lets the kinds look at the
 * whole tree (which pipes lead outside: those are kept as external on
 * fds 0-2 of the root, refused elsewhere). v[0] is the root; root_stdio:
 * its fds 0-2 are external whatever they are (a container's, set up by
 * its runtime). */
int files_link(struct files_proc *v, size_t n, bool root_stdio);
/* sk-scm.c. The fds in flight in the tree's unix queues (nested ones
 * too) as tables of their own, one per message, after the tree's: the
 * kinds' link() and make() see them as any fd of the tree (a pipe end,
 * a pty master, an open file description also in some process's table).
 * The tables hold copies of the records (fd: our copy's number at dump,
 * for kcmp; the index in the message at restore; pid: ours). Sockets in
 * flight are not in them: they come with their own queues. */
struct files_inflight {
	struct files_proc *all; /* v[0..n) of open(), then the messages' */
	size_t n;
	struct files_rec *recs;
	struct fd_rec *copies; /* the records of recs[], one array */
	struct fd_rec **orig;  /* the record in the queue of each copy */
	size_t nrecs, ncopies;
};
int files_inflight_open(const struct files_proc *v, size_t n, bool dump, struct files_inflight *ret);
/* write_back: the copies' desc and shared go to the records (dump). */
void files_inflight_close(struct files_inflight *t, bool write_back);
/* Saves what the kinds keep outside the records (pipe bytes, the content
 * of deleted files) into the image. */
int files_dump_data(struct image *img, int procfd, pid_t pid, struct files_rec *f);
int files_to_json(const struct files_rec *f, json_t **ret);
int files_from_json(const json_t *j, struct files_rec *f);

/* files-restore.c */
void files_ctx_done(struct files_ctx *c);
/* The table of things made: our fd for key, or -1; adding takes fd over
 * (closing it on failure). Keys of fd descriptions are their desc; others
 * set a top bit (shmem.c: bit 63, pipes.c: bit 62). */
int files_ctx_find(const struct files_ctx *c, uint64_t key);
int files_ctx_add(struct files_ctx *c, uint64_t key, int fd);
/* Restores f into the process; tfd is its end of the transport, pidfd
 * its pidfd (to take fds other processes share); root: the tree's root,
 * whose external fds come from us. */
int files_restore(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f, int tfd, int pidfd,
		  bool root);

/* The kind's name as the image writes it ("reg", "pipe", ...). */
const char *fd_kind_name(const struct fd_rec *o);
/* The fd leads outside the tree and is given back by the restorer
 * (files-ext.c); file locks are not looked at on those. */
bool fd_is_external(const struct fd_rec *o);

/* files-owner.c: the SIGIO owner, signal and O_ASYNC of every fd. Read
 * at collect; refused when the owner is not of the tree; the record's
 * optional "owner"; set again once the process's threads exist. */
int fd_owners_collect(pid_t pid, struct files_rec *f);
int fd_owners_check(const struct files_proc *v, size_t n);
void fd_owner_to_json(const struct fd_rec *o, struct json_builder *b);
int fd_owner_from_json(const json_t *j, struct fd_rec *o);
int files_restore_owners(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f);

/* --- for the kinds --- */

/* What a kind sees of one fd at dump. */
struct fd_probe {
	int procfd; /* /proc/PID */
	pid_t pid;
	int fd;
	const char *link;      /* /proc/PID/fd/N as text */
	const struct stat *st; /* NULL when it cannot be stat'ed (some anon inodes) */
	const char *fdinfo;    /* /proc/PID/fdinfo/N */
	size_t fdinfo_len;
	uint32_t open_flags;   /* from fdinfo */
	unsigned flags;        /* files_collect's */
};

/* The data pass of one process (files_dump_data). */
struct fd_dump {
	struct image *img;
	int procfd;
	pid_t pid;
	const struct files_rec *f;
	int pidfd; /* -1 until fd_dump_pidfd() */
};

/* Restoring one process's fds (files_restore). */
struct fd_restore {
	struct files_ctx *c;
	struct remote *r;
	pid_t tid;
	int tfd;   /* the process's end of the transport (fdpass.h) */
	bool root; /* the tree's root */
};

/* One kind of fd. A kind restores either by open() (it makes a new open
 * file description inside the task, or in the restorer and passes it
 * in; a description other processes share is then copied from the first
 * holder) or by make() (the restorer makes the object once, for every
 * holder at once: pipe ends, socket pairs, fds it inherited). Every hook
 * but match, open or make may be NULL. Hooks that fail log, naming pid,
 * fd and what. */
struct fd_ops {
	const char *name; /* "kind" in the image (docs/FORMAT.md) */
	/* Restored after every fd that is not late: epoll, whose targets
	 * must exist first. */
	bool late;
	/* Kept even on fds 0-2 of a container's first process, which are
	 * otherwise the runtime's stdio: match() takes only what no runtime
	 * puts there (the process's own TCP connection). */
	bool own_stdio;

	/* --- dump --- */
	/* Takes the fd? The first kind of the table that does gets it. */
	bool (*match)(const struct fd_probe *p);
	/* Fills o->state; may refuse with -EOPNOTSUPP. */
	int (*collect)(const struct fd_probe *p, struct fd_rec *o);
	/* Once every fd of the process is collected. */
	int (*check)(pid_t pid, const struct files_rec *f, const struct fd_rec *o);
	/* Once every fd of the tree is collected, before descriptions are
	 * numbered: may turn fds external (fd_set_external) or refuse. Called
	 * once per kind, not per fd. */
	int (*link)(struct files_proc *v, size_t n);
	/* Saves content into the image; also called for dups (o->dup_of). */
	int (*dump_data)(struct fd_dump *d, struct fd_rec *o);
	/* The kind's keys of the fd's object (the common ones are written and
	 * read by files.c). from_json validates: -EBADMSG on anything out of
	 * range. */
	void (*to_json)(const struct fd_rec *o, struct json_builder *b);
	int (*from_json)(const json_t *j, struct fd_rec *o);
	void (*free)(void *state);

	/* --- restore --- */
	/* Returns the fd number it got in the task (not yet at o->fd). */
	long (*open)(const struct fd_restore *x, const struct fd_rec *o);
	/* Makes o's description in the restorer and adds it (and any other
	 * it makes along, such as the other end) with files_ctx_add. */
	int (*make)(const struct fd_restore *x, const struct fd_rec *o);
	/* After open(), with the fd at o->fd: the offset, epoll's targets. */
	int (*setup)(const struct fd_restore *x, const struct fd_rec *o);
	/* Why o's record cannot come back in flight, where it is in no table
	 * (sk-scm.c), or NULL; checked on read. NULL hook: every one can. */
	const char *(*not_in_flight)(const struct fd_rec *o);
	/* Once the tree's descriptions are numbered (files_link, fds in
	 * flight included): may note the desc of what the state names (an
	 * epoll's targets). Called once per kind. */
	int (*link_numbered)(struct files_proc *v, size_t n);
	/* In flight, instead of setup(): after open() in the task, with
	 * ours, the restorer's copy of the description; for a kind whose
	 * setup() names fds of its holder's table. */
	int (*setup_in_flight)(const struct fd_restore *x, const struct fd_rec *o, int ours);
};

extern const struct fd_ops fd_external_ops;
/* A terminal (pty, console, serial line). */
bool fd_stat_is_tty(const struct stat *st);
/* Frees o's kind state and makes it external (files-ext.c). */
void fd_set_external(struct fd_rec *o);
/* Calls every kind's link() (files-tree.c); numbered: link_numbered(). */
int fd_kinds_link(struct files_proc *v, size_t n);
int fd_kinds_link_numbered(struct files_proc *v, size_t n);
/* sk-scm.c: a new fd of ours for the description desc of the tree (an fd
 * in a table or in flight), made as an fd in flight is when nobody made
 * it yet. */
int files_inflight_get(const struct fd_restore *x, uint64_t desc);
/* Our copy of fd `fd` of the process; the pidfd is opened once per pass. */
int fd_dump_take(struct fd_dump *d, int fd);
/* The record of fd `fd` in f, or NULL. */
const struct fd_rec *files_find(const struct files_rec *f, int fd);

/* Format 2 writes a 7-u64 "anon" blob (hex) for eventfd, signalfd and
 * timerfd, and an all-zero one for pipes, sockets and inotify; the zero
 * one is still written so that older readers take our images. */
struct fd_anon {
	uint64_t count;     /* eventfd counter */
	uint64_t semaphore; /* eventfd EFD_SEMAPHORE */
	uint64_t sigmask;   /* signalfd */
	uint64_t clockid, ticks, value_ns, interval_ns; /* timerfd */
};
void fd_anon_to_json(struct json_builder *b, const struct fd_anon *a);
int fd_anon_from_json(const json_t *j, struct fd_anon *ret);
/* The hooks of the kinds whose whole state is a struct fd_anon (eventfd,
 * signalfd, timerfd): collect with the kind's fdinfo parser, and the
 * record both ways. */
int fd_anon_collect(const struct fd_probe *p, struct fd_rec *o,
		    int (*parse)(const char *buf, size_t len, struct fd_anon *ret));
void fd_anon_state_to_json(const struct fd_rec *o, struct json_builder *b);
int fd_anon_state_from_json(const json_t *j, struct fd_rec *o);
/* The kind's state for collect() or from_json(): size zeroed bytes at
 * o->state. fd_state_free: the kind's free(), then the memory. */
int fd_state_alloc(struct fd_rec *o, size_t size);
void fd_state_free(struct fd_rec *o);
/* Appends the object of item (ended here) to array, keeping its error. */
void fd_json_append(struct json_builder *b, json_t *array, struct json_builder *item);
/* Our fd, passed into the task; logs. */
long fd_push(const struct fd_restore *x, const struct fd_rec *o, int ours);
/* open() made fd in the task but could not give it o's state (err):
 * closes it there and logs. Returns err. */
long fd_state_failed(const struct fd_restore *x, const struct fd_rec *o, long fd, int err);
