/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pseudo-terminal pairs held by the process, with their settings and
 * bytes queued both ways:
 *  A: canonical, echo on, its own erase character and speed, 33x77; a
 *     complete line and a line being typed wait for the slave's reader,
 *     output of the slave (mapped \n -> \r\n) for the master's; the
 *     master is non-blocking, the slave close-on-exec;
 *  B: raw, packet mode, bytes queued both ways;
 *  C: never unlocked.
 * After the restore every setting reads back equal, the pts numbers are
 * the same, the queues hold what they held, and the line discipline
 * carries on (the typed line completes, echo comes back).
 *
 * stasis-test: zdtm:pty
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmtst.h"

struct pty {
	int m, s;
	char name[64];
};

static void open_pty(struct pty *p, bool unlock)
{
	p->m = posix_openpt(O_RDWR | O_NOCTTY);
	if (p->m < 0 || grantpt(p->m) < 0 || (unlock && unlockpt(p->m) < 0))
		test_die("posix_openpt: %s", strerror(errno));
	if (ptsname_r(p->m, p->name, sizeof(p->name)))
		test_die("ptsname: %s", strerror(errno));
	p->s = unlock ? open(p->name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
	if (unlock && p->s < 0)
		test_die("open %s: %s", p->name, strerror(errno));
}

/* Reads what fd has within a short while (the tty layer is asynchronous). */
static size_t read_avail(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	while (got < cap && poll(&pf, 1, 300) > 0 && (pf.revents & POLLIN)) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Field by field: struct termios has padding. */
static bool same_termios(const struct termios *x, const struct termios *y)
{
	return x->c_iflag == y->c_iflag && x->c_oflag == y->c_oflag && x->c_cflag == y->c_cflag &&
	       x->c_lflag == y->c_lflag && x->c_line == y->c_line && !memcmp(x->c_cc, y->c_cc, sizeof(x->c_cc)) &&
	       cfgetispeed(x) == cfgetispeed(y) && cfgetospeed(x) == cfgetospeed(y);
}

static void check_name(const struct pty *p, int fd)
{
	char link[64], path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	check(!strcmp(link, p->name), "slave fd %d is %s, was %s", fd, link, p->name);
}

int main(int argc, char **argv)
{
	struct pty a, b, c;
	struct termios ta, tb, got;
	struct winsize wa = { .ws_row = 33, .ws_col = 77, .ws_xpixel = 5, .ws_ypixel = 9 }, wgot;
	char buf[256];
	int one = 1, v;

	test_init(argc, argv);
	open_pty(&a, true);
	open_pty(&b, true);
	open_pty(&c, false);

	/* A: canonical with echo, '#' erases, 9600 baud. */
	tcgetattr(a.s, &ta);
	ta.c_lflag |= ICANON | ECHO;
	ta.c_cc[VERASE] = '#';
	cfsetspeed(&ta, B9600);
	if (tcsetattr(a.s, TCSANOW, &ta) < 0 || ioctl(a.m, TIOCSWINSZ, &wa) < 0)
		test_die("setting up A: %s", strerror(errno));
	tcgetattr(a.s, &ta);
	if (write(a.m, "line one\npart", 13) != 13)
		test_die("write A");
	/* The echo goes to the master: take it away, so that what is queued
	 * there is the slave's output alone. */
	size_t n = read_avail(a.m, buf, sizeof(buf));
	if (n != 14 || memcmp(buf, "line one\r\npart", 14))
		test_die("echo of A: %zu bytes '%.*s'", n, (int)n, buf);
	if (write(a.s, "out1\n", 5) != 5)
		test_die("write A slave");
	fcntl(a.m, F_SETFL, O_NONBLOCK);

	/* B: raw, packet mode. */
	tcgetattr(b.s, &tb);
	cfmakeraw(&tb);
	tcsetattr(b.s, TCSANOW, &tb);
	tcgetattr(b.s, &tb);
	if (ioctl(b.m, TIOCPKT, &one) < 0)
		test_die("TIOCPKT: %s", strerror(errno));
	if (write(b.m, "raw\x01\x03\nbytes", 11) != 11 || write(b.s, "xyz\n", 4) != 4)
		test_die("write B");
	usleep(100 * 1000);

	test_ready();
	test_wait();

	/* Settings. */
	check_name(&a, a.s);
	check_name(&b, b.s);
	check(tcgetattr(a.s, &got) == 0 && same_termios(&got, &ta), "termios of A differs");
	check(cfgetispeed(&got) == B9600 && got.c_cc[VERASE] == '#', "speed or erase of A differ");
	check(ioctl(a.s, TIOCGWINSZ, &wgot) == 0 && !memcmp(&wgot, &wa, sizeof(wa)), "window size of A is %dx%d",
	      wgot.ws_row, wgot.ws_col);
	check(tcgetattr(b.s, &got) == 0 && same_termios(&got, &tb), "termios of B differs");
	check(ioctl(b.m, TIOCGPKT, &v) == 0 && v == 1, "B lost packet mode");
	check(ioctl(a.m, TIOCGPKT, &v) == 0 && v == 0, "A gained packet mode");
	check(ioctl(c.m, TIOCGPTLCK, &v) == 0 && v == 1, "C is not locked any more");
	check(ioctl(a.m, TIOCGPTLCK, &v) == 0 && v == 0, "A is locked");
	check(fcntl(a.m, F_GETFL) & O_NONBLOCK, "master A lost O_NONBLOCK");
	check(fcntl(a.s, F_GETFD) & FD_CLOEXEC, "slave A lost FD_CLOEXEC");
	check(!(fcntl(b.m, F_GETFL) & O_NONBLOCK), "master B gained O_NONBLOCK");
	char cname[64];
	check(ptsname_r(c.m, cname, sizeof(cname)) == 0 && !strcmp(cname, c.name), "C is %s, was %s", cname, c.name);

	/* A's queues: the complete line, then the typed part completed now. */
	n = read(a.s, buf, sizeof(buf)); /* canonical: one line */
	check(n == 9 && !memcmp(buf, "line one\n", 9), "A's slave read %zd bytes '%.*s'", n, (int)(n > 0 ? n : 0), buf);
	n = read_avail(a.m, buf, sizeof(buf));
	check(n == 6 && !memcmp(buf, "out1\r\n", 6), "A's master read %zu bytes '%.*s'", n, (int)n, buf);
	/* '#' erases the last byte typed before the dump. */
	if (write(a.m, "#ial\n", 5) != 5)
		fail("write A after restore");
	n = read(a.s, buf, sizeof(buf));
	check(n == 7 && !memcmp(buf, "parial\n", 7), "A's typed line read as %zd bytes '%.*s'", n,
	      (int)(n > 0 ? n : 0), buf);
	n = read_avail(a.m, buf, sizeof(buf));
	check(n >= 5 && !memcmp(buf + n - 5, "ial\r\n", 5), "A's echo is '%.*s'", (int)n, buf);

	/* B's queues: raw bytes, and packet mode's data byte first. */
	n = read_avail(b.s, buf, sizeof(buf));
	check(n == 11 && !memcmp(buf, "raw\x01\x03\nbytes", 11), "B's slave read %zu bytes", n);
	n = read_avail(b.m, buf, sizeof(buf));
	check(n == 5 && buf[0] == TIOCPKT_DATA && !memcmp(buf + 1, "xyz\n", 4), "B's master read %zu bytes", n);
	test_done();
}
