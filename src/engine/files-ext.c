/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* External fds: a terminal, pipe or socket on fds 0-2 that leads outside
 * the process (or, in a container, whatever its runtime set up there);
 * an inet socket there is the process's own (see inet_socket).
 * Nothing of them is saved but the path /proc showed; restore reattaches
 * them to the restorer's own fd of that number, or to the one given with
 * --inherit-fd. Other kinds turn external once the whole tree is known
 * (a pipe whose other end is outside, files-tree.c and pipes.c). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/files.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"

bool fd_stat_is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) && (maj == 136 || maj == 4 || maj == 5);
}

/* A TCP or UDP socket on fds 0-2 lives in the process's network
 * namespace: its connection (inetd, nc -e, or a shell's `read <&3`, which
 * puts fd 3 on fd 0 while it reads) is the process's own, never a
 * caller's or a runtime's stdio. Reattaching another fd there loses the
 * connection, so the socket kind takes it (and keeps it or refuses it
 * with --tcp-established / --tcp-close). Unknown: external, as before. */
static bool inet_socket(const struct fd_probe *p)
{
	_cleanup_close_ int pidfd = sys_pidfd_open(p->pid, 0);
	_cleanup_close_ int sk = pidfd >= 0 ? fdpass_take(pidfd, p->fd) : -1;
	int dom = AF_UNSPEC;
	socklen_t l = sizeof(dom);
	return sk >= 0 && getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && (dom == AF_INET || dom == AF_INET6);
}

static bool ext_match(const struct fd_probe *p)
{
	const struct stat *st = p->st;
	if (!st || p->fd > 2)
		return false;
	if (S_ISSOCK(st->st_mode))
		return !inet_socket(p);
	return S_ISFIFO(st->st_mode) || fd_stat_is_tty(st);
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
