/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fds of a whole tree, side by side: which open file descriptions are
 * the same (kcmp), which are shared between processes (they must stay
 * shared after restore: one offset, one pipe). The kinds look at the tree
 * first (link() in files.h): which pipes lead outside (pipes.c), whether
 * a unix socket's peer is ours (sockets.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/files.h"
#include "util/log.h"
#include "util/util.h"

static int same_desc(const struct files_proc *a, const struct fd_rec *x, const struct files_proc *b,
		     const struct fd_rec *y, bool *ret)
{
	bool kinds = x->ops == y->ops || fd_is_external(x) || fd_is_external(y);
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

static int link_all(struct files_proc *v, size_t n, bool root_stdio)
{
	uint64_t next = 1;
	/* A container's stdio is its runtime's (log pipes, a file of the
	 * caller): reattached on restore to what the new container gets;
	 * but not a TCP connection of its own there (own_stdio), which
	 * would be lost to the new container's stdin. */
	for (size_t k = 0; root_stdio && n && k < v[0].f->n; k++)
		if (v[0].f->fds[k].fd <= 2 && !v[0].f->fds[k].ops->own_stdio)
			fd_set_external(&v[0].f->fds[k]);
	int r = fd_kinds_link(v, n);
	if (r < 0 || (r = fd_owners_check(v, n)) < 0)
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
			if (r && fd_is_external(e))
				fd_set_external(o); /* the same description as the root's stdio */
			if (r && ep != i)
				o->shared = true;
			/* dup_of names the first fd of this process with the desc. */
			for (size_t m = 0; r && m < k; m++)
				if (v[i].f->fds[m].desc == o->desc) {
					o->dup_of = v[i].f->fds[m].fd;
					break;
				}
			if (fd_is_external(o) && i > 0 && !(r && ep == 0))
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) leads outside the tree and is "
						       "not one of pid %d's fds, so it could not be given back",
						       v[i].pid, o->fd, o->path, v[0].pid);
		}
	if ((r = fd_kinds_link_numbered(v, n)) < 0)
		return r;
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

/* The fds in flight take part as tables of their own (files.h). */
int files_link(struct files_proc *v, size_t n, bool root_stdio)
{
	struct files_inflight t;
	int r = files_inflight_open(v, n, true, &t);
	if (r < 0)
		return r;
	r = link_all(t.all, t.n, root_stdio);
	files_inflight_close(&t, r >= 0);
	return r;
}
