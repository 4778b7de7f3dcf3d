/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int fdpass_open(int *ret_ctl, int *ret_stub)
{
	int sv[2];
	/* SEQPACKET: one fd per message, never merged or split. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	*ret_ctl = sv[0];
	*ret_stub = sv[1];
	return 0;
}

static int send_fd(int ctl, int fd)
{
	char byte = 0;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* The receive side is built in the scratch page, with addresses of the
 * task: msghdr at +8192, iovec at +8256, one byte at +8320, control at
 * +8384. */
long fdpass_push(struct remote *r, pid_t tid, int ctl, int tfd, int fd)
{
	const uint64_t at = r->scratch + 8192;
	struct iovec iov = { (void *)(uintptr_t)(at + 128), 1 };
	struct msghdr mh = { .msg_iov = (void *)(uintptr_t)(at + 64), .msg_iovlen = 1,
			     .msg_control = (void *)(uintptr_t)(at + 192), .msg_controllen = CMSG_SPACE(sizeof(int)) };
	int e = send_fd(ctl, fd);
	if (e < 0 || (e = remote_write(r, at, &mh, sizeof(mh))) < 0 || (e = remote_write(r, at + 64, &iov, sizeof(iov))) < 0)
		return e;
	long n = remote_syscall(r, tid, SYS_recvmsg, tfd, at, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return n;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr got;
	if ((e = remote_read(r, at, &got, sizeof(got))) < 0 || (e = remote_read(r, at + 192, u.buf, sizeof(u.buf))) < 0)
		return e;
	if (got.msg_controllen < CMSG_LEN(sizeof(int)) || u.h.cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	int nfd;
	memcpy(&nfd, CMSG_DATA(&u.h), sizeof(int));
	return nfd;
}

int fdpass_take(int pidfd, int fd)
{
	int n = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	return n < 0 ? -errno : n;
}
