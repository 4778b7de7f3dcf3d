/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pre-dumps, dump side (predump.h): write tracking with userfaultfd
 * write-protection in async mode, and the keeper that holds the
 * userfaultfds between two dumps. */
#include "engine/predump.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/fdpass.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* One message carries them all (SCM_MAX_FD is 253). */
#define KEEP_MAX 250
/* A keeper nobody asks for gives up its tracking after this long (or
 * when every process it tracks has exited). */
#define KEEP_SECONDS 3600
#define ARM_VEC 256

struct predump {
	bool pre_dump;
	char *parent;      /* realpath of the parent image; NULL: none (or its tracking is gone) */
	uint64_t digest;   /* of its manifest */
	size_t n;
	pid_t pids[KEEP_MAX];
	int fds[KEEP_MAX]; /* the userfaultfd of pids[i]'s address space */
	struct mm_warm *warm[KEEP_MAX]; /* what the warm-up saw of pids[i] */
};

/* The keeper of DIR listens on an abstract unix socket named after it. */
static int keeper_addr(const char *real, struct sockaddr_un *a, socklen_t *len)
{
	*a = (struct sockaddr_un){ .sun_family = AF_UNIX };
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "stasis-predump-%016" PRIx64,
			 XXH3_64bits(real, strlen(real)));
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	return 0;
}

int predump_digest(const char *dir, uint64_t *ret)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, IMAGE_MANIFEST);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	XXH3_state_t *st = XXH3_createState();
	char buf[65536];
	ssize_t n;
	if (!st)
		return -ENOMEM;
	XXH3_64bits_reset(st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		XXH3_64bits_update(st, buf, (size_t)n);
	*ret = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return n < 0 ? -errno : 0;
}

/* Takes the userfaultfds over from the parent's keeper, which exits. */
static int take_over(struct predump *pd)
{
	struct sockaddr_un a;
	socklen_t alen;
	keeper_addr(pd->parent, &a, &alen);
	_cleanup_close_ int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, alen) < 0)
		return -errno;
	union {
		char buf[CMSG_SPACE(sizeof(int) * KEEP_MAX)];
		struct cmsghdr align;
	} c;
	struct iovec iov = { pd->pids, sizeof(pd->pids) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
	ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n < 0 ? -errno : -ECONNRESET;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	size_t nfd = h && h->cmsg_type == SCM_RIGHTS ? (h->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;
	if (nfd)
		memcpy(pd->fds, CMSG_DATA(h), nfd * sizeof(int));
	pd->n = nfd;
	return (size_t)n / sizeof(pid_t) == nfd ? 0 : -EBADMSG;
}

static int open_parent(struct predump *pd, const char *dir)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return log_error_errno(-errno, "parent image %s: %m", dir);
	int r = predump_digest(real, &pd->digest);
	if (r < 0)
		return log_error_errno(r, "parent image %s has no readable %s (%m): not an image", dir, IMAGE_MANIFEST);
	if (!(pd->parent = strdup(real)))
		return -ENOMEM;
	if ((r = take_over(pd)) < 0) {
		log_info("write tracking since %s is gone (%s: its keeper exited or timed out): this dump saves all memory",
			 dir, strerror(-r));
		free(pd->parent);
		pd->parent = NULL;
	}
	return 0;
}

int predump_begin(bool pre_dump, const char *parent, struct predump **ret)
{
	*ret = NULL;
	if (!pre_dump && !parent)
		return 0;
	struct predump *pd = calloc(1, sizeof(*pd));
	if (!pd)
		return -ENOMEM;
	pd->pre_dump = pre_dump;
	int r = parent ? open_parent(pd, parent) : 0;
	if (r < 0) {
		predump_free(pd);
		return r;
	}
	*ret = pd;
	return 0;
}

void predump_warm(struct predump *pd, struct image *img)
{
	char name[IMAGE_NAME_MAX];
	for (size_t i = 0; pd && pd->parent && i < pd->n; i++) {
		pd->warm[i] = mm_pages_warm(pd->pids[i]);
		/* And a little for the mappings saved in full (file-backed). */
		uint64_t len = mm_warm_bytes(pd->warm[i]);
		int r = len ? image_reserve(img, image_name_pages(name, pd->pids[i]), len + (256u << 10)) : 0;
		if (r < 0)
			log_debug("pid %d: cannot reserve its page file ahead of the freeze: %s", pd->pids[i],
				  strerror(-r));
		else if (len)
			log_debug("pid %d: %" PRIu64 " KiB of its page file reserved", pd->pids[i], len >> 10);
	}
}

static int find(const struct predump *pd, pid_t pid)
{
	for (size_t i = 0; i < pd->n; i++)
		if (pd->pids[i] == pid)
			return (int)i;
	return -1;
}

void predump_mark(struct predump *pd, pid_t pid, struct mm_rec *m)
{
	int i = pd && pd->parent ? find(pd, pid) : -1;
	m->tracked = i >= 0;
	m->warm = i >= 0 ? pd->warm[i] : NULL;
	if (pd && pd->parent && !m->tracked)
		log_info("pid %d was not write-tracked since the parent image: all its memory is saved", pid);
}

/* A userfaultfd for the process's address space, made by the process
 * itself (a remote call) and taken out of it: the program never sees it. */
static int make_uffd(struct predump *pd, struct remote *r, pid_t pid, int pidfd)
{
	if (pd->n == KEEP_MAX)
		return -EMFILE;
	long u = remote_syscall(r, pid, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (u < 0)
		return (int)u;
	int fd = fdpass_take(pidfd, (int)u);
	remote_syscall(r, pid, SYS_close, u);
	if (fd < 0)
		return fd;
	struct uffdio_api a = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	if (ioctl(fd, UFFDIO_API, &a) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	pd->pids[pd->n] = pid;
	pd->fds[pd->n] = fd;
	return (int)pd->n++;
}

/* Write-protects the present pages of the tracked mappings in [start,
 * end): the next write to each shows as PAGE_IS_WRITTEN. Pages not
 * there yet need nothing: a new page is never write-protected. */
static int arm(int pagemap_fd, uint64_t start, uint64_t end)
{
	struct page_region vec[ARM_VEC];
	for (;;) {
		struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING, .start = start, .end = end,
					 .vec = (uint64_t)vec, .vec_len = ARM_VEC,
					 .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
					 .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		if (n < ARM_VEC || a.walk_end >= end) /* see DESIGN.md §7 on walk_end */
			return 0;
		start = a.walk_end;
	}
}

static void register_all(int uffd, pid_t pid, const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		if (v->kind != VMA_ANON || v->shared)
			continue;
		struct uffdio_register g = { .range = { v->start, v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(uffd, UFFDIO_REGISTER, &g) < 0)
			log_info("pid %d: %#" PRIx64 "-%#" PRIx64 " cannot be write-tracked (%m): the next dump saves it "
				 "in full", pid, v->start, v->end);
	}
}

int predump_track(struct predump *pd, struct remote *r, pid_t pid, int pidfd, int procfd, const struct mm_rec *m)
{
	if (!pd || !pd->pre_dump || !m->nvmas)
		return 0;
	int i = find(pd, pid);
	if (i < 0 && (i = make_uffd(pd, r, pid, pidfd)) < 0) {
		log_info("pid %d: no write tracking (userfaultfd with async write-protect: %s): the next dump saves "
			 "all its memory", pid, strerror(-i));
		return 0;
	}
	register_all(pd->fds[i], pid, m);
	_cleanup_close_ int pm = openat(procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	int e = pm < 0 ? -errno : arm(pm, m->vmas[0].start, m->vmas[m->nvmas - 1].end);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot write-protect its memory for tracking: %m", pid);
	return 0;
}

/* The path of `to` as seen from directory `from` (both canonical). */
static void relative(const char *from, const char *to, char *out, size_t size)
{
	size_t k = 0, common = 0;
	while (from[k] && from[k] == to[k]) {
		if (from[k] == '/')
			common = k;
		k++;
	}
	if (!from[k] && to[k] == '/')
		common = k;
	size_t len = 0;
	out[0] = 0;
	for (const char *p = from + common; *p; p++)
		if (*p == '/' && len + 4 < size)
			len += (size_t)snprintf(out + len, size - len, "../");
	snprintf(out + len, size - len, "%s", to[common] == '/' ? to + common + 1 : to + common);
}

void predump_to_json(const struct predump *pd, const char *dir, struct json_builder *b)
{
	char real[PATH_MAX], rel[PATH_MAX];
	if (!pd || !pd->parent)
		return;
	if (!realpath(dir, real))
		snprintf(real, sizeof(real), "%s", dir);
	relative(real, pd->parent, rel, sizeof(rel));
	struct json_builder p;
	jb_begin(&p);
	jb_str(&p, "path", rel);
	jb_x64(&p, "digest", pd->digest);
	jb_obj(b, "parent", &p);
}

/* Waits for the next dump: 0 when it connects, -1 on the timeout or
 * when every tracked process is gone (their pidfds, after the socket). */
static int keeper_wait(struct pollfd *p, size_t n)
{
	for (;;) {
		if (poll(p, n, KEEP_SECONDS * 1000) <= 0)
			return -1;
		if (p[0].revents)
			return 0;
		size_t gone = 0;
		for (size_t i = 1; i < n; i++)
			gone += p[i].fd < 0 || p[i].revents;
		if (gone == n - 1)
			return -1;
	}
}

/* The keeper: holds the userfaultfds (and nothing else of ours) until
 * the next dump connects, hands them over and exits. */
static _Noreturn void keeper_main(struct predump *pd, int s)
{
	int keep[2 * KEEP_MAX + 1];
	struct pollfd p[KEEP_MAX + 1] = { { s, POLLIN, 0 } };
	size_t nk = 0;
	keep[nk++] = s;
	for (size_t i = 0; i < pd->n; i++) {
		keep[nk++] = pd->fds[i];
		p[i + 1] = (struct pollfd){ sys_pidfd_open(pd->pids[i], 0), POLLIN, 0 };
		keep[nk++] = p[i + 1].fd;
	}
	for (int fd = 0; fd < 65536; fd++) {
		bool k = false;
		for (size_t i = 0; i < nk; i++)
			k |= keep[i] == fd;
		if (!k)
			close(fd);
	}
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; null >= 0 && fd < 3; fd++)
		if (fd != null && dup2(null, fd) < 0)
			_exit(1);
	setsid();
	while (keeper_wait(p, pd->n + 1) == 0) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		if (c < 0)
			continue;
		/* The fds give write access to the tracked memory (a holder can
		 * register it for UFFDIO_COPY): only our own user gets them. */
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 || cr.uid != geteuid()) {
			close(c);
			continue;
		}
		union {
			char buf[CMSG_SPACE(sizeof(int) * KEEP_MAX)];
			struct cmsghdr align;
		} u = { 0 };
		struct iovec iov = { pd->pids, pd->n * sizeof(pid_t) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = CMSG_SPACE(sizeof(int) * pd->n) };
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		*h = (struct cmsghdr){ .cmsg_len = CMSG_LEN(sizeof(int) * pd->n), .cmsg_level = SOL_SOCKET,
				       .cmsg_type = SCM_RIGHTS };
		memcpy(CMSG_DATA(h), pd->fds, sizeof(int) * pd->n);
		if (sendmsg(c, &m, MSG_NOSIGNAL) > 0)
			_exit(0);
		close(c);
	}
	_exit(0);
}

int predump_keep(struct predump *pd, const char *dir)
{
	char real[PATH_MAX];
	struct sockaddr_un a;
	socklen_t alen;
	if (!pd || !pd->pre_dump || !pd->n)
		return 0;
	if (!realpath(dir, real))
		return log_error_errno(-errno, "image %s: %m", dir);
	keeper_addr(real, &a, &alen);
	_cleanup_close_ int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, alen) < 0 || listen(s, 4) < 0)
		return log_error_errno(-errno, "cannot keep the write tracking for %s (unix socket: %m)", dir);
	pid_t k = fork();
	if (k < 0)
		return log_error_errno(-errno, "cannot start the keeper of the write tracking: %m");
	if (k == 0)
		keeper_main(pd, s);
	log_info("write tracking of %zu processes kept by pid %d for the next dump with --parent %s (at most %d s)",
		 pd->n, k, dir, KEEP_SECONDS);
	return 0;
}

void predump_free(struct predump *pd)
{
	if (!pd)
		return;
	for (size_t i = 0; i < pd->n; i++) {
		close(pd->fds[i]);
		mm_warm_free(pd->warm[i]);
	}
	free(pd->parent);
	free(pd);
}
