/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fds of every kind in flight (SCM_RIGHTS) in a unix datagram queue, each
 * in a message named after it, closed by the sender unless said:
 *  - "eventfd": an eventfd whose counter is 7;
 *  - "memfd": a memfd holding "sealed content", sealed against growing
 *    and shrinking;
 *  - "pidfd": a pidfd of a child that waits to be killed;
 *  - "ptmx": a pty master (raw, window 33x77) whose slave we keep;
 *  - "epoll": an epoll instance that watches an eventfd we keep (fd 100)
 *    and one sent with it in the same message (added as fd 101, closed
 *    since);
 *  - "timerfd": a timer armed in 1000 s, every 1000 s;
 *  - "signalfd": a signalfd for SIGUSR2;
 *  - "deleted": a file deleted while open, holding "gone", offset 1;
 *  - "opath": an O_PATH fd of a file;
 *  - "shared": a regular file that we also keep in our table, offset 3:
 *    after restore the two are one open file description (reading on one
 *    moves the other);
 *  - "twice": one eventfd sent twice in one message: the two fds received
 *    are one eventfd.
 * After the restore each is received and checked: counter, content and
 * seals, the child killed through its pidfd, the terminal carries bytes
 * both ways, the epoll watches a new fd, the timer is still armed, ...
 *
 *
 * stasis-test: zdtm:inflight_kinds
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmtst.h"

static int ch[2], slave = -1, shared = -1;
static pid_t child;

static void send_fds(const char *msg, const int *fds, int n)
{
	struct iovec iov = { (void *)msg, strlen(msg) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	if (sendmsg(ch[0], &mh, 0) != (ssize_t)strlen(msg))
		test_die("sendmsg %s: %m", msg);
}

/* Sends fd under msg and closes our copy. */
static void give(const char *msg, int fd)
{
	if (fd < 0)
		test_die("%s: %m", msg);
	send_fds(msg, &fd, 1);
	close(fd);
}

/* The next message, which must be want; its fds into fds[0..1]. */
static int take(const char *want, int fds[2])
{
	char buf[32] = "";
	struct iovec iov = { buf, sizeof(buf) - 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int n = 0;
	fds[0] = fds[1] = -1;
	ssize_t len = recvmsg(ch[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); len >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_type == SCM_RIGHTS) {
			n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)(n > 2 ? 2 : n));
		}
	check(len >= 0 && !strcmp(buf, want), "expected message '%s', got '%s' (%zd: %m)", want, buf, len);
	check(n >= 1, "message '%s' came without its fd", want);
	return fds[0];
}

static int one(const char *want)
{
	int fds[2];
	return take(want, fds);
}

static void make_pty(void)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 77 };
	struct termios t;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) || unlockpt(m) || (slave = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    tcgetattr(slave, &t) || ioctl(m, TIOCSWINSZ, &ws))
		test_die("pty: %m");
	cfmakeraw(&t);
	if (tcsetattr(slave, TCSANOW, &t))
		test_die("pty raw: %m");
	give("ptmx", m);
}

/* An epoll watching fd 100 (kept) and fd 101 (sent along, then closed). */
static void make_epoll(void)
{
	struct epoll_event a = { .events = EPOLLIN, .data.u64 = 100 }, b = { .events = EPOLLOUT, .data.u64 = 101 };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || dup3(eventfd(0, EFD_CLOEXEC), 100, O_CLOEXEC) != 100 ||
	    dup3(eventfd(0, EFD_CLOEXEC), 101, O_CLOEXEC) != 101 || epoll_ctl(ep, EPOLL_CTL_ADD, 100, &a) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, 101, &b))
		test_die("epoll: %m");
	int two[2] = { ep, 101 };
	send_fds("epoll", two, 2);
	close(ep);
	close(101);
}

/* The "tfd:" numbers of epoll fd ep's fdinfo, into tfds (at most 4). */
static int epoll_tfds(int ep, int *tfds)
{
	char path[64], line[256];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	FILE *f = fopen(path, "re");
	while (f && n < 4 && fgets(line, sizeof(line), f))
		n += sscanf(line, "tfd: %d", &tfds[n]) == 1;
	if (f)
		fclose(f);
	return n;
}

static void make_memfd(void)
{
	int fd = memfd_create("inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, "sealed content", 14) != 14 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		test_die("memfd: %m");
	give("memfd", fd);
}

static void make_files(void)
{
	int fd = open("deleted.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "gone", 4) != 4 || lseek(fd, 1, SEEK_SET) != 1 || unlink("deleted.txt"))
		test_die("deleted: %m");
	give("deleted", fd);
	fd = open("opath.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "by path", 7) != 7)
		test_die("opath: %m");
	close(fd);
	give("opath", open("opath.txt", O_PATH | O_CLOEXEC));
	shared = open("shared.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (shared < 0 || write(shared, "0123456789", 10) != 10 || lseek(shared, 3, SEEK_SET) != 3)
		test_die("shared: %m");
	send_fds("shared", &shared, 1);
}

static void setup(void)
{
	struct itimerspec its = { .it_interval = { 1000, 0 }, .it_value = { 1000, 0 } };
	sigset_t ss;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ch))
		test_die("socketpair: %m");
	give("eventfd", eventfd(7, EFD_CLOEXEC));
	make_memfd();
	if ((child = fork()) < 0)
		test_die("fork: %m");
	if (child == 0) {
		for (;;)
			pause();
	}
	give("pidfd", (int)syscall(SYS_pidfd_open, child, 0));
	make_pty();
	make_epoll();
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (t < 0 || timerfd_settime(t, 0, &its, NULL))
		test_die("timerfd: %m");
	give("timerfd", t);
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR2);
	give("signalfd", signalfd(-1, &ss, SFD_CLOEXEC));
	make_files();
	int e = eventfd(40, EFD_CLOEXEC), two[2] = { e, e };
	if (e < 0)
		test_die("eventfd: %m");
	send_fds("twice", two, 2);
	close(e);
}

static void expect(int fd, const char *what, const char *want)
{
	char buf[32] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	check(n == (ssize_t)strlen(want) && !strcmp(buf, want), "%s: read '%s' (%zd), expected '%s'", what, buf, n,
	      want);
}

static void check_counters(void)
{
	uint64_t v = 0;
	int fd = one("eventfd");
	check(fd < 0 || (read(fd, &v, 8) == 8 && v == 7), "eventfd: counter %llu, expected 7", (unsigned long long)v);
	fd = one("memfd");
	if (fd >= 0) {
		char buf[32] = "";
		check(pread(fd, buf, sizeof(buf), 0) == 14 && !strcmp(buf, "sealed content"), "memfd: '%s'", buf);
		int seals = fcntl(fd, F_GET_SEALS);
		check(seals == (F_SEAL_GROW | F_SEAL_SHRINK), "memfd: seals %#x, expected %#x", seals,
		      F_SEAL_GROW | F_SEAL_SHRINK);
		check(ftruncate(fd, 1) < 0 && errno == EPERM, "memfd: could shrink a sealed memfd");
	}
	fd = one("pidfd");
	int status = 0;
	check(fd < 0 || syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) == 0, "pidfd: pidfd_send_signal: %m");
	pid_t w = waitpid(child, &status, WNOHANG);
	for (int i = 0; w == 0 && i < 500; i++) {
		usleep(10000);
		w = waitpid(child, &status, WNOHANG);
	}
	check(w == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
	      "pidfd: the child was not killed through it (status %#x)", status);
	if (w == 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
}

static void check_pty(void)
{
	struct winsize ws = { 0 };
	int m = one("ptmx");
	if (m < 0)
		return;
	check(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 77, "ptmx: window %ux%u", ws.ws_row,
	      ws.ws_col);
	check(write(slave, "ping", 4) == 4, "pty: write to the slave: %m");
	expect(m, "ptmx: from the slave", "ping");
	check(write(m, "pong", 4) == 4, "pty: write to the master: %m");
	expect(slave, "pty slave: from the master", "pong");
}

static void check_epoll_timer(void)
{
	struct epoll_event got[4];
	uint64_t one_ = 1;
	int fds[2], tfds[4] = { 0 };
	int ep = take("epoll", fds), n = ep < 0 ? 0 : epoll_tfds(ep, tfds);
	check(n == 2 && ((tfds[0] == 100 && tfds[1] == 101) || (tfds[0] == 101 && tfds[1] == 100)),
	      "epoll: watches %d fds (%d, %d), expected 100 and 101", n, tfds[0], tfds[1]);
	n = ep < 0 ? 0 : epoll_wait(ep, got, 4, 0);
	check(n == 1 && got[0].data.u64 == 101, "epoll: %d ready before a write, expected the one sent (%llu)", n,
	      n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
	check(write(100, &one_, 8) == 8, "epoll: write to fd 100: %m");
	n = ep < 0 ? 0 : epoll_wait(ep, got, 4, 1000);
	check(n == 2, "epoll: %d ready after a write to the kept eventfd, expected 2", n);
	uint64_t v = 0;
	check(fds[1] >= 0 && write(fds[1], &one_, 8) == 8 && read(fds[1], &v, 8) == 8 && v == 1,
	      "epoll: the eventfd sent with it does not work");
	check(ep < 0 || epoll_ctl(ep, EPOLL_CTL_DEL, 100, NULL) == 0, "epoll: cannot stop watching fd 100: %m");
	struct itimerspec its = { 0 };
	int t = one("timerfd");
	check(t >= 0 && timerfd_gettime(t, &its) == 0, "timerfd: gettime: %m");
	check(its.it_interval.tv_sec == 1000 && its.it_value.tv_sec > 0 && its.it_value.tv_sec <= 1000,
	      "timerfd: interval %lds, next in %lds", (long)its.it_interval.tv_sec, (long)its.it_value.tv_sec);
	struct signalfd_siginfo si;
	int s = one("signalfd");
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR2);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	raise(SIGUSR2);
	check(s >= 0 && read(s, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2,
	      "signalfd: SIGUSR2 not read from it");
}

static void check_files(void)
{
	char path[64], buf[64] = "";
	int d = one("deleted");
	expect(d, "deleted file", "one");
	int p = one("opath");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	check(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 7 && !strcmp(buf, "by path"), "opath: reads '%s'", buf);
	check(fcntl(p, F_GETFL) & O_PATH, "opath: not O_PATH any more");
	int s = one("shared");
	check(lseek(s, 0, SEEK_CUR) == 3, "shared: offset %ld in flight, expected 3", (long)lseek(s, 0, SEEK_CUR));
	expect(shared, "shared file", "0123456789" + 3);
	check(lseek(s, 0, SEEK_CUR) == 10, "shared: the fd in flight is its own open file description (offset %ld "
	      "after reading the kept one)", (long)lseek(s, 0, SEEK_CUR));
	int two[2];
	uint64_t v = 0, one_ = 1;
	take("twice", two);
	check(two[0] >= 0 && two[1] >= 0 && write(two[0], &one_, 8) == 8 && read(two[1], &v, 8) == 8 && v == 41,
	      "twice: the two fds are not one eventfd (read %llu)", (unsigned long long)v);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	setup();
	test_ready();
	test_wait();
	check_counters();
	check_pty();
	check_epoll_timer();
	check_files();
	test_done();
}
