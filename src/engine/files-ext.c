/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* External fds: a terminal, pipe or socket on fds 0-2 that leads outside
 * the process (or, in a container, whatever its runtime set up there).
 * Nothing of them is saved but the path /proc showed; restore reattaches
 * them to the restorer's own fd of that number, or to the one given with
 * --inherit-fd. Other kinds turn external once the whole tree is known
 * (a pipe whose other end is outside, files-tree.c and pipes.c). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "engine/files.h"
#include "util/log.h"

bool fd_stat_is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) && (maj == 136 || maj == 4 || maj == 5);
}

static bool ext_match(const struct fd_probe *p)
{
	const struct stat *st = p->st;
	return st && p->fd <= 2 && (S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) || fd_stat_is_tty(st));
}

bool fd_is_external(const struct fd_rec *o)
{
	return o->ops == &fd_external_ops;
}

void fd_set_external(struct fd_rec *o)
{
	fd_state_free(o);
	o->ops = &fd_external_ops;
}

static int find_inherited(const struct inherit_fd *inh, size_t ninh, int target)
{
	for (size_t i = 0; i < ninh; i++)
		if (inh[i].target_fd == target)
			return inh[i].our_fd;
	return target <= 2 ? target : -1;
}

/* Another process's external fd is a copy of one of the root's
 * (files_link refuses any other): the root's number for it, -1 if none. */
static int root_fd_of(const struct files_ctx *c, const struct fd_rec *o)
{
	for (size_t k = 0; c->nall && k < c->all[0].f->n; k++)
		if (c->all[0].f->fds[k].desc == o->desc)
			return c->all[0].f->fds[k].fd;
	return -1;
}

/* Only the root's come from us; another process may be the first to
 * need one (the root's table is filled later when it shares it with a
 * child: share.c), and gets the root's. */
static int ext_make(const struct fd_restore *x, const struct fd_rec *o)
{
	int at = x->root ? o->fd : root_fd_of(x->c, o), e;
	int inh = at >= 0 ? find_inherited(x->c->inh, x->c->ninh, at) : -1;
	if (inh < 0)
		return log_error_errno(-EBADF, "pid %d: fd %d was %s outside the process; give it one with "
				       "--inherit-fd %d:FD", x->r->pid, o->fd, o->path, o->fd);
	int copy = fcntl(inh, F_DUPFD_CLOEXEC, 3);
	if ((e = copy < 0 ? -errno : files_ctx_add(x->c, o->desc, copy)) < 0)
		return log_error_errno(e, "pid %d: cannot use our fd %d for its fd %d: %m", x->r->pid, inh, o->fd);
	return 0;
}

const struct fd_ops fd_external_ops = {
	.name = "external",
	.match = ext_match,
	.make = ext_make,
};
