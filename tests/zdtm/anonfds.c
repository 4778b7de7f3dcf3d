/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* eventfd (counter, semaphore mode), signalfd (mask, a pending signal read
 * through it), timerfd (armed: remaining time and interval; expired:
 * unread ticks). All must be as they were after restore.
 *
 * stasis-test: zdtm:anonfds
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t v = 0;
	sigset_t mask;

	test_init(argc, argv);
	int efd = eventfd(0, EFD_NONBLOCK);
	int esem = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	v = 0x123456789ULL; /* above 32 bits: the initval of eventfd() cannot hold it */
	if (efd < 0 || esem < 0 || write(efd, &v, 8) != 8)
		test_die("eventfd: %s", strerror(errno));
	v = 3;
	if (write(esem, &v, 8) != 8)
		test_die("eventfd write: %s", strerror(errno));

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	if (sfd < 0)
		test_die("signalfd: %s", strerror(errno));

	int tarmed = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec its = { .it_value = { 30, 0 }, .it_interval = { 7, 0 } };
	int tfired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec fast = { .it_value = { 0, 5000000 }, .it_interval = { 100, 0 } };
	if (tarmed < 0 || tfired < 0 || timerfd_settime(tarmed, 0, &its, NULL) < 0 ||
	    timerfd_settime(tfired, 0, &fast, NULL) < 0)
		test_die("timerfd: %s", strerror(errno));
	usleep(20000); /* tfired expires once and is not read */

	/* epoll watching the eventfd (ready) and the armed timer (not ready),
	 * with its own fd number above them and data words to recognise. */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xfeedfacecafe0001ULL };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0)
		test_die("epoll: %s", strerror(errno));
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0xfeedfacecafe0002ULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tarmed, &ev) < 0)
		test_die("epoll_ctl: %s", strerror(errno));

	test_ready();
	test_wait();

	struct epoll_event got[4];
	int n = epoll_wait(ep, got, 4, 0);
	check(n == 1 && got[0].data.u64 == 0xfeedfacecafe0001ULL && (got[0].events & EPOLLIN),
	      "epoll reported %d events (first data %#llx), expected the eventfd only", n,
	      n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
	check((fcntl(ep, F_GETFD) & FD_CLOEXEC) != 0, "epoll fd lost FD_CLOEXEC");
	check(read(efd, &v, 8) == 8 && v == 0x123456789ULL, "eventfd count %#llx, expected 0x123456789",
	      (unsigned long long)v);
	check(read(efd, &v, 8) < 0 && errno == EAGAIN, "eventfd lost O_NONBLOCK or was not reset by read");
	for (int i = 0; i < 3; i++)
		check(read(esem, &v, 8) == 8 && v == 1, "semaphore eventfd read %d gave %llu", i, (unsigned long long)v);
	check((fcntl(esem, F_GETFD) & FD_CLOEXEC) != 0, "semaphore eventfd lost FD_CLOEXEC");

	kill(getpid(), SIGUSR2);
	struct signalfd_siginfo si;
	check(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2,
	      "signalfd did not deliver SIGUSR2");

	struct itimerspec cur;
	check(timerfd_gettime(tarmed, &cur) == 0 && cur.it_interval.tv_sec == 7 && cur.it_value.tv_sec < 30 &&
		      (cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0),
	      "armed timerfd: value %ld.%09ld interval %ld", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec,
	      (long)cur.it_interval.tv_sec);
	check(read(tfired, &v, 8) == 8 && v == 1, "expired timerfd ticks %llu, expected 1", (unsigned long long)v);
	test_done();
}
