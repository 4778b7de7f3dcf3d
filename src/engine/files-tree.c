/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fds of a whole tree, side by side: which open file descriptions are
 * the same (kcmp), which are shared between processes (they must stay
 * shared after restore: one offset, one pipe), and which pipes lead
 * outside the tree. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/syscalls.h"
#include "util/log.h"
#include "util/util.h"

/* A pipe is inside the tree when both a read and a write end are. */
static bool pipe_inside(const struct files_proc *v, size_t n, uint64_t id)
{
	bool rd = false, wr = false;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			if (o->kind == FD_PIPE && o->pipe_id == id) {
				rd |= pipe_is_read_end(o);
				wr |= !pipe_is_read_end(o);
			}
		}
	return rd && wr;
}

static int same_desc(const struct files_proc *a, const struct fd_rec *x, const struct files_proc *b,
		     const struct fd_rec *y, bool *ret)
{
	bool kinds = x->kind == y->kind || x->kind == FD_EXTERNAL || y->kind == FD_EXTERNAL;
	if (!kinds || !streq(x->path, y->path)) {
		*ret = false;
		return 0;
	}
	long r = syscall(SYS_kcmp, a->pid, b->pid, KCMP_FILE, x->fd, y->fd);
	if (r < 0)
		return log_error_errno(-errno, "cannot compare fd %d of pid %d with fd %d of pid %d: %m", x->fd,
				       a->pid, y->fd, b->pid);
	*ret = r == 0;
	return 0;
}

/* Finds an earlier fd (in tree order) with the same description. */
static int find_earlier(const struct files_proc *v, size_t i, size_t k, const struct fd_rec **ret,
			size_t *ret_proc)
{
	const struct fd_rec *o = &v[i].f->fds[k];
	for (size_t j = 0; j <= i; j++)
		for (size_t m = 0; m < (j == i ? k : v[j].f->n); m++) {
			bool same = false;
			int r = same_desc(&v[j], &v[j].f->fds[m], &v[i], o, &same);
			if (r < 0)
				return r;
			if (same) {
				*ret = &v[j].f->fds[m];
				*ret_proc = j;
				return 1;
			}
		}
	return 0;
}

/* An end whose other end nobody holds any more (a reader that closed its
 * write end, a writer whose reader went away) is restored as such: poll
 * on a copy says so without touching the pipe. */
static bool pipe_widowed(pid_t pid, const struct fd_rec *o)
{
	int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return false;
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, o->fd, 0);
	close(pidfd);
	if (fd < 0)
		return false;
	struct pollfd p = { .fd = fd, .events = pipe_is_read_end(o) ? POLLIN : POLLOUT };
	int n = poll(&p, 1, 0);
	close(fd);
	return n > 0 && (p.revents & (pipe_is_read_end(o) ? POLLHUP : POLLERR));
}

static int resolve_external(const struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			if (o->kind != FD_PIPE || o->path[0] == '/' || pipe_inside(v, n, o->pipe_id) ||
			    pipe_widowed(v[i].pid, o))
				continue; /* a FIFO (by path) is reopened whoever holds its other end */
			if (o->fd > 2)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) is a pipe whose other end is "
						       "outside the tree, which cannot be checkpointed yet",
						       v[i].pid, o->fd, o->path);
			o->kind = FD_EXTERNAL;
		}
	return 0;
}

static bool has_socket(const struct files_proc *v, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (v[i].f->fds[k].kind == FD_SOCKET && v[i].f->fds[k].sk->ino == ino)
				return true;
	return false;
}

/* A connected unix socket is restored with its peer: both must be ours. */
static int check_peers(const struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			if (o->kind == FD_SOCKET && sk_needs_peer(o->sk) && !has_socket(v, n, o->sk->peer_ino))
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) is a unix socket connected to "
						       "a process outside the tree (peer socket:[%llu]), which cannot "
						       "be checkpointed yet", v[i].pid, o->fd, o->path,
						       (unsigned long long)o->sk->peer_ino);
		}
	return 0;
}

int files_link(struct files_proc *v, size_t n, bool root_stdio)
{
	uint64_t next = 1;
	/* A container's stdio is its runtime's (log pipes, a file of the
	 * caller): reattached on restore to what the new container gets. */
	for (size_t k = 0; root_stdio && n && k < v[0].f->n; k++)
		if (v[0].f->fds[k].fd <= 2)
			v[0].f->fds[k].kind = FD_EXTERNAL;
	int r = resolve_external(v, n);
	if (r < 0 || (r = check_peers(v, n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			const struct fd_rec *e = NULL;
			size_t ep = 0;
			o->dup_of = -1;
			if ((r = find_earlier(v, i, k, &e, &ep)) < 0)
				return r;
			o->desc = r ? e->desc : next++;
			if (r && e->kind == FD_EXTERNAL)
				o->kind = FD_EXTERNAL; /* the same description as the root's stdio */
			if (r && ep != i)
				o->shared = true;
			/* dup_of names the first fd of this process with the desc. */
			for (size_t m = 0; r && m < k; m++)
				if (v[i].f->fds[m].desc == o->desc) {
					o->dup_of = v[i].f->fds[m].fd;
					break;
				}
			if (o->kind == FD_EXTERNAL && i > 0 && !(r && ep == 0))
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) leads outside the tree and is "
						       "not one of pid %d's fds, so it could not be given back",
						       v[i].pid, o->fd, o->path, v[0].pid);
		}
	/* The first holder of a shared description must know it is shared. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (v[i].f->fds[k].shared)
				for (size_t j = 0; j < n; j++)
					for (size_t m = 0; m < v[j].f->n; m++)
						if (v[j].f->fds[m].desc == v[i].f->fds[k].desc)
							v[j].f->fds[m].shared = true;
	return 0;
}
