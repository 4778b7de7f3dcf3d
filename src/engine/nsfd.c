/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Namespace fds: an open /proc/PID/ns entry ("net:[4026531840]").
 *
 * A namespace cannot be saved, only found again: at dump, the fd's
 * namespace must be one a process of the tree is in (or makes its
 * children in: pid_for_children, time_for_children); the record names
 * that holder and its entry. On restore the task opens the namespace the
 * restored holder is in, through a pidfd of it (PIDFD_GET_*_NAMESPACE,
 * Linux 6.11; before that /proc/HOLDER/ns/ENTRY). A namespace no process
 * of the tree is in is refused at dump, naming pid, fd and namespace. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "engine/files.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_nsfd_ops;

/* The entries of /proc/PID/ns, each with the pidfd ioctl that opens it. */
static const struct ns_entry {
	const char *entry, *type; /* the type is what the link text shows */
	unsigned long ioctl;
} entries[] = {
	{ "cgroup", "cgroup", _IO(0xFF, 1) },
	{ "ipc", "ipc", _IO(0xFF, 2) },
	{ "mnt", "mnt", _IO(0xFF, 3) },
	{ "net", "net", _IO(0xFF, 4) },
	{ "pid", "pid", _IO(0xFF, 5) },
	{ "pid_for_children", "pid", _IO(0xFF, 6) },
	{ "time", "time", _IO(0xFF, 7) },
	{ "time_for_children", "time", _IO(0xFF, 8) },
	{ "user", "user", _IO(0xFF, 9) },
	{ "uts", "uts", _IO(0xFF, 10) },
};

struct nsfd_state {
	uint64_t ino;
	char type[8];
	pid_t holder;            /* a process of the tree in that namespace */
	const struct ns_entry *e; /* and its entry */
};

/* "net:[4026531840]" */
static int parse_link(const char *link, char type[8], uint64_t *ino)
{
	char t[8], end;
	unsigned long long i;
	if (sscanf(link, "%7[a-z]:[%llu%c", t, &i, &end) != 3 || end != ']' || link[strlen(link) - 1] != ']')
		return -EINVAL;
	for (size_t k = 0; k < ARRAY_SIZE(entries); k++)
		if (streq(entries[k].type, t)) {
			memcpy(type, t, sizeof(t));
			*ino = i;
			return 0;
		}
	return -EINVAL;
}

static bool nsfd_match(const struct fd_probe *p)
{
	char t[8];
	uint64_t ino;
	return p->link[0] != '/' && parse_link(p->link, t, &ino) == 0;
}

static int nsfd_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct nsfd_state));
	if (r < 0)
		return r;
	struct nsfd_state *s = o->state;
	return parse_link(p->link, s->type, &s->ino);
}

/* The entry of pid that shows the namespace, or NULL. */
static const struct ns_entry *holds(pid_t pid, const struct nsfd_state *s)
{
	char path[64];
	struct stat st;
	for (size_t k = 0; k < ARRAY_SIZE(entries); k++) {
		if (!streq(entries[k].type, s->type))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, entries[k].entry);
		if (stat(path, &st) == 0 && (uint64_t)st.st_ino == s->ino)
			return &entries[k];
	}
	return NULL;
}

/* The holder: the fd's own process when it is in the namespace, else
 * the first of the tree that is. */
static int find_holder(const struct files_proc *v, size_t n, pid_t self, struct nsfd_state *s)
{
	if ((s->e = holds(self, s))) {
		s->holder = self;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((s->e = holds(v[i].pid, s))) {
			s->holder = v[i].pid;
			return 0;
		}
	return -ENOENT;
}

static int nsfd_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			struct nsfd_state *s = o->state;
			if (o->ops != &fd_nsfd_ops || find_holder(v, n, v[i].pid, s) == 0)
				continue;
			return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is %s namespace %s, which no process of "
					       "the tree is in; it cannot be restored", v[i].pid, o->fd, s->type,
					       o->path);
		}
	return 0;
}

static void nsfd_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct nsfd_state *s = o->state;
	jb_int(b, "ns_holder", s->holder);
	jb_str(b, "ns_entry", s->e->entry);
}

static int nsfd_from_json(const json_t *j, struct fd_rec *o)
{
	const char *entry;
	int r = fd_state_alloc(o, sizeof(struct nsfd_state));
	if (r < 0)
		return r;
	struct nsfd_state *s = o->state;
	if ((r = json_get_int(j, "ns_holder", &s->holder)) < 0 || (r = json_get_str(j, "ns_entry", &entry)) < 0)
		return r;
	if (s->holder < 1 || parse_link(o->path, s->type, &s->ino) < 0)
		return -EBADMSG;
	for (size_t k = 0; k < ARRAY_SIZE(entries); k++)
		if (streq(entries[k].entry, entry) && streq(entries[k].type, s->type))
			s->e = &entries[k];
	return s->e ? 0 : -EBADMSG;
}

/* --- restore --- */

/* The ioctl's fd lacks the flags an open() gives (O_LARGEFILE), which
 * the program can see: it is opened again through /proc/self/fd, where
 * that works. */
static long reopen(const struct fd_restore *x, long fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
	long again = remote_open(x->r, x->tid, path, O_RDONLY | O_CLOEXEC, 0);
	if (again < 0)
		return fd;
	remote_syscall(x->r, x->tid, SYS_close, fd);
	return again;
}

static long open_by_pidfd(const struct fd_restore *x, const struct nsfd_state *s)
{
	long pidfd = remote_syscall(x->r, x->tid, SYS_pidfd_open, s->holder, 0);
	if (pidfd < 0)
		return pidfd;
	long fd = remote_syscall(x->r, x->tid, SYS_ioctl, pidfd, s->e->ioctl, 0);
	remote_syscall(x->r, x->tid, SYS_close, pidfd);
	return fd < 0 ? fd : reopen(x, fd);
}

static long nsfd_open(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct nsfd_state *s = o->state;
	char path[64];
	long fd = open_by_pidfd(x, s);
	if (fd == -ENOTTY || fd == -EINVAL) { /* before Linux 6.11 */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", s->holder, s->e->entry);
		fd = remote_open(x->r, x->tid, path, O_RDONLY | O_CLOEXEC, 0);
	}
	if (fd < 0)
		log_error_errno((int)fd, "pid %d: cannot open again fd %d, %s namespace of pid %d: %m", x->r->pid,
				o->fd, s->e->entry, s->holder);
	return fd;
}

const struct fd_ops fd_nsfd_ops = {
	.name = "nsfd",
	.match = nsfd_match,
	.collect = nsfd_collect,
	.link = nsfd_link,
	.to_json = nsfd_to_json,
	.from_json = nsfd_from_json,
	.open = nsfd_open,
};
