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
#include <time.h>

#include "engine/dump.h"
#include "engine/kernel.h"

/* What the user names: a process by pid, a container by id (and the
 * runtime's namespace, for containerd). */
struct rt_target {
	pid_t pid;
	const char *id;
	const char *ns;
	const char *address; /* containerd's socket (--address); NULL: found */
};

/* What an adapter finds of its target. */
struct rt_found {
	pid_t pid;      /* the tree's root (a container's init), host pid */
	json_t *meta;   /* the manifest's "container" object, or NULL */
	json_t *config; /* the runtime's own description (config.json), or NULL */
};

/* A restore as the user asked for it. */
struct rt_restore_req {
	const char *dir;
	const char *type;   /* the image must be of this type; NULL: any */
	const char *ns;     /* and of this runtime namespace; NULL: any */
	const char *new_id; /* a container's new name; NULL: its old one */
	bool keep_ip;       /* the container keeps its address (--keep-ip) */
	const char *address; /* containerd's socket (--address); NULL: found */
	struct restore_opts o;
};

/* What the restore gave: the root's pid and, when the command waited for
 * it (a process restored without --detach), its exit status. */
struct rt_restored {
	pid_t pid;
	pid_t wait_for; /* set by the adapter: our child to wait for, or 0 */
	bool waited;
	struct restore_stats stats; /* --print-stats */
	int status;
};

/* A container being restored into. */
struct rt_sandbox {
	char id[256];
	pid_t pid;               /* the stub: the container's first process, host pid */
	char bundle[PATH_MAX];   /* runc: our bundle directory, removed on failure */
	char stub_file[PATH_MAX]; /* the stub's copy in the container's root (host path) */
	char stub_in[64];        /* the same, as the container sees it */
	bool created;            /* the runtime made it: remove it on failure */
	bool keep_ip;            /* in: give it the original's address (rt_restore_req) */
	char ns[128];            /* containerd: the namespace, "" for others (and Docker's) */
	char address[PATH_MAX];  /* containerd: its socket; set before create_sandbox from --address */
};

enum rt_target_kind {
	RT_BY_PID,   /* --pid PID */
	RT_BY_ID,    /* --id ID */
	RT_BY_ID_NS, /* --namespace NS --id ID */
};

struct rt_ops {
	const char *name;
	enum rt_target_kind target;
	/* Finds the target: its root pid and what the image keeps about it. */
	int (*locate)(const struct rt_target *t, struct rt_found *ret);
	/* The engine runs inside the target's pid and network namespaces
	 * (rt_in_container), where a container's init is pid 1. */
	bool in_container;
	/* Optional, at dump with the tree frozen, from where the engine runs:
	 * saves more into the image (arg: the "container" object). */
	int (*before_commit)(struct image *img, void *arg);
	/* The whole restore of an opened image: rt_restore_sandbox for
	 * containers, the process adapter's own for processes. */
	int (*restore)(const struct rt_ops *ops, struct image *img, const struct rt_restore_req *req,
		       struct rt_restored *ret);
	/* Containers: a new container (named new_id) from the image's
	 * description, its first process the stub at stub_path, with
	 * stub_tfd as its fd 3 when uses_fd. */
	int (*create_sandbox)(struct image *img, const json_t *meta, const json_t *config, const char *new_id,
			      const char *stub_path, int stub_tfd, struct rt_sandbox *ret);
	/* ok: the restore succeeded (remove the stub's file); else remove the
	 * container. */
	void (*finish)(struct rt_sandbox *sb, bool ok);
	/* The runtime gives the stub our transport as its fd 3 (runc
	 * --preserve-fds); else the stub connects to us itself. */
	bool uses_fd;
	/* create_sandbox can give the container the original's IP address
	 * (sb->keep_ip); restore --keep-ip is refused for the others. */
	bool keeps_ip;
};

/* The adapter of that name, or NULL; rt_names lists them for messages. */
const struct rt_ops *rt_find(const char *name);
const char *rt_names(void);

/* The commands. Each logs its own errors (one line) and returns -errno. */
int rt_dump(const struct rt_ops *ops, const struct rt_target *t, const char *dir, struct dump_opts *o);
int rt_restore(const struct rt_restore_req *req, struct rt_restored *ret);
/* argv[1] is RT_LAZY_FILLER_ARG: this process is a lazy restore's filler
 * (engine/lazy.h); returns only when it could not start. */
#define RT_LAZY_FILLER_ARG "__lazy-filler"
int rt_lazy_filler(int argc, char **argv);
/* Prints what the image in dir holds (as_json: as JSON). */
int rt_inspect(const char *dir, bool as_json);
/* What a dump of the target would refuse or lose (stasis check --pid or
 * --id), changing nothing: findings go to rep (its print is called in
 * whatever process looks, a child for a container). 0 when it could
 * look, -errno (logged) when not. */
struct rt_check_result {
	unsigned refused, lost; /* findings: the dump fails on, or goes through without */
	unsigned procs, fds;    /* looked at */
};
int rt_check(const struct rt_ops *ops, const struct rt_target *t, struct dump_opts *o,
	     void (*print)(bool refused, const char *msg), struct rt_check_result *ret);
/* What this kernel offers of what stasis needs (stasis check). */
const struct kfeature *rt_kernel_features(size_t *ret_n);

/* checkpoint-dir.c: where a dump goes without -D. The root is
 * $STASIS_CHECKPOINT_ROOT, else RT_CHECKPOINT_ROOT; it and its missing
 * parents are made 0700. rt_default_dir writes into buf a path below it
 * that does not exist yet, TYPE-NAME-YYYYMMDDTHHMMSSZ (NAME: the pid or
 * the id as given), for image_create to make. */
#define RT_CHECKPOINT_ROOT "/var/lib/stasis/checkpoints"
const char *rt_checkpoint_root(void);
int rt_default_dir(const struct rt_ops *ops, const struct rt_target *t, char *buf, size_t size);

/* A container's restore: sandbox, then the engine inside it. */
int rt_restore_sandbox(const struct rt_ops *ops, struct image *img, const struct rt_restore_req *req,
		       struct rt_restored *ret);
/* The restore stub: next to the binary, in ../libexec/stasis, or
 * $STASIS_STUB. */
int rt_stub_path(char *buf, size_t size);

/* A container's root filesystem, seen from where the engine runs for it
 * (rt_in_container: its pid namespace, our mounts). */
#define RT_CONTAINER_ROOT "/proc/1/root"

/* runtime-util.c */
/* Runs argv, returns its stdout (NUL-terminated) in *ret_out (may be NULL
 * when not wanted); a nonzero exit is an error carrying its stderr. */
int rt_run(char *const argv[], char **ret_out);
/* Runs fn(arg) in a child that has joined the pid and network namespaces
 * of host pid `pid`, with a mount namespace of its own whose /proc shows
 * that pid namespace; the container's files are at /proc/1/root there.
 * With `above` > 0 (a restore: the image's highest pid or tid), that child
 * and every task it makes there get pids above it (DESIGN.md §5a). */
int rt_in_container(pid_t pid, pid_t above, int (*fn)(void *), void *arg);
int rt_copy_file(const char *from, const char *to, mode_t mode);

/* exec-stub.c: the stub at the path a container's runtime executes, for
 * its first start only. */
struct rt_exec_args {
	const char *arg0; /* the process's argv[0] */
	const char *path; /* PATH of its environment, or NULL */
	const char *cwd;  /* its working directory */
};
struct rt_exec_stub {
	char dir[PATH_MAX];       /* the path's directory, symlinks resolved, from the root ("" for /) */
	char name[NAME_MAX + 1];  /* its last component */
	char saved[64];           /* the upper entry the stub hides, kept beside the upper directory, or "" */
	struct timespec times[2]; /* the directory's times as the container sees it */
};
/* Before the first start: the stub (stub_path) into the upper directory
 * `upper` (lowers: the image's layers, colon-separated, topmost first) at
 * the path the runtime will execute for a. */
int rt_exec_stub_place(const struct rt_exec_args *a, const char *upper, const char *lowers, const char *stub_path,
		       struct rt_exec_stub *ret);
/* Once started (host pid `pid`, the container's first process): waits
 * until it runs the stub, then gives the path back what it held. */
int rt_exec_stub_unplace(const struct rt_exec_stub *s, const char *upper, pid_t pid);

/* overlay-ctr.c: Docker's and Podman's overlay containers, from their
 * inspect: the writable layer and tmpfs contents saved (a before_commit:
 * arg is the manifest's "container" object with "upper" and "tmpfs") and
 * the tmpfs filled again in the new container (its first process pid);
 * what its runtime executes first, and the image's layers. */
int rt_ovl_save(struct image *img, void *arg);
int rt_ovl_fill_tmpfs(struct image *img, const json_t *meta, pid_t pid);
struct rt_exec_args rt_ovl_exec_args(const json_t *insp);
const char *rt_ovl_lower_dirs(const json_t *insp);

/* fs-archive.c: the files under dir into the image as name, and back into
 * dest (after checking name's checksum). */
int rt_archive_save(struct image *img, const char *dir, const char *name);
int rt_archive_apply(struct image *img, const char *name, const char *dest);
/* Waits for our child: 0 when it exited 0, -EIO for another status, -EINTR
 * when a signal ended it, -errno when it cannot be waited for. */
int rt_wait(pid_t pid);
/* The capabilities we hold (our bounding set), up to number max, as names
 * with the given prefix ("CAP_" for OCI, "" for Docker): a runtime cannot
 * give the stub more than we have. */
json_t *rt_our_caps(const char *prefix, int max);
