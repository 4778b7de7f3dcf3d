/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The warden of a lazy restore. Memory registered with a userfaultfd
 * stays registered only while someone holds that fd: should the filler
 * die before every page is in (killed by a user, by the OOM killer, a
 * crash), the kernel would unregister the tree's memory and its next
 * faults would read zeros: a program running on wrong data, which a lazy
 * restore must never allow (as for a damaged page, lazy-fill.c).
 *
 * So the filler forks a warden first thing, before any thread of its
 * own, and hands it a copy of every userfaultfd and pidfd it gets (of
 * the tree's processes and of the children they fork). While the warden
 * holds them, the tree's faults wait. When the filler is done it says so
 * and waits for the warden to let go; if instead the filler's end of
 * their socket closes without a word, the warden kills every process of
 * the tree and their children, and says so once. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/lazy.h"
#include "engine/proc.h"
#include "engine/stats.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"

enum { W_TARGET = 'T', W_CHILD = 'C', W_DONE = 'D' };

struct pids {
	int *fds;
	size_t n, cap;
};

static void push(struct pids *v, int pidfd)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		int *p = realloc(v->fds, nc * sizeof(*p));
		if (!p)
			return; /* the ones we have are still killed */
		v->fds = p, v->cap = nc;
	}
	v->fds[v->n++] = pidfd;
}

/* pid's descendants, by /proc's children lists, as pidfds. */
static void add_descendants(struct pids *v, pid_t pid, int depth)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if (depth >= 64 || proc_read(AT_FDCWD, path, &buf, &len) < 0)
		return;
	for (char *s = buf, *end; *s; s = end) {
		long child = strtol(s, &end, 10);
		if (end == s)
			break;
		int pfd = sys_pidfd_open((pid_t)child, 0);
		if (pfd >= 0)
			push(v, pfd);
		add_descendants(v, (pid_t)child, depth + 1);
	}
}

/* The filler is gone with pages still out: nothing of the tree may run
 * on. The children the tree forked meanwhile are found first (a killed
 * parent's children move to another parent). */
static void kill_tree(struct pids *v, struct restore_stats *st)
{
	size_t known = v->n;
	for (size_t i = 0; i < known; i++) {
		pid_t pid = proc_pidfd_pid(v->fds[i]);
		if (pid > 0)
			add_descendants(v, pid, 0);
	}
	for (size_t i = 0; i < v->n; i++)
		sys_pidfd_send_signal(v->fds[i], SIGKILL);
	const char *msg = "lazy restore: the filler ended before every page was in; the restored processes were "
			  "killed (SIGKILL) rather than run on memory that is not theirs";
	snprintf(st->msg, sizeof(st->msg), "%s", msg);
	__atomic_store_n(&st->lazy_state, LAZY_FAILED, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&st->attached, __ATOMIC_SEQ_CST))
		stats_syslog(msg);
	log_error("%s", msg); /* the log file, when there is one */
}

static void warden_main(int sock, struct restore_stats *st)
{
	struct pids v = { 0 };
	prctl(PR_SET_NAME, "stasis-warden", 0, 0, 0);
	setsid(); /* not in the filler's process group: a kill of it is not ours */
	for (;;) {
		char kind = 0, cbuf[CMSG_SPACE(2 * sizeof(int))];
		struct iovec iov = { &kind, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 1 && kind == W_DONE)
			_exit(0);
		if (n <= 0)
			break;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		int fds[2] = { -1, -1 };
		size_t len = c && c->cmsg_type == SCM_RIGHTS ? c->cmsg_len - CMSG_LEN(0) : 0;
		if (len)
			memcpy(fds, CMSG_DATA(c), len < sizeof(fds) ? len : sizeof(fds));
		/* fds[0], the userfaultfd, is only held; fds[1] names the process. */
		if (kind == W_TARGET && fds[1] >= 0)
			push(&v, fds[1]);
	}
	kill_tree(&v, st);
	_exit(1);
}

int lazy_warden_start(struct restore_stats *st, int other, pid_t *ret_pid)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(sv[0]), close(sv[1]);
		return e;
	}
	if (pid == 0) {
		close(sv[0]);
		if (other >= 0)
			close(other); /* the restore's socket is the filler's alone */
		warden_main(sv[1], st);
	}
	close(sv[1]);
	*ret_pid = pid;
	return sv[0];
}

/* A copy of a target's userfaultfd and pidfd (pidfd < 0: a child's
 * userfaultfd alone) for the warden to hold. */
int lazy_warden_give(int sock, int uffd, int pidfd)
{
	int fds[2] = { uffd, pidfd };
	size_t nfds = pidfd >= 0 ? 2 : 1;
	char kind = pidfd >= 0 ? W_TARGET : W_CHILD, cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { &kind, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* The filler is done (or has killed the tree itself): the warden lets go
 * of its copies. wait: until it has, before the memory may be left to
 * the kernel. */
void lazy_warden_release(int sock, pid_t pid, bool wait)
{
	char kind = W_DONE;
	if (sock < 0)
		return;
	(void)!send(sock, &kind, 1, MSG_NOSIGNAL);
	while (wait && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
