/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A session with a controlling terminal, as a terminal emulator or tmux
 * makes one: the root holds the master of a pty; its child L leads a new
 * session whose controlling terminal is the slave; L's child J is in its
 * own process group, in the foreground, and has /dev/tty open.
 *
 * After the restore: L still leads the session and the slave is its
 * controlling terminal (tcgetsid, tty_nr in /proc), J's group is in the
 * foreground, J writes through /dev/tty and the root reads it on the
 * master, and a ^C typed on the master interrupts J (the foreground
 * group) and not L.
 *
 * stasis-test: zdtm:pty_session
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "zdtmtst.h"

static int res[2], rdy[2];
static volatile sig_atomic_t got_int;

struct report {
	char who;
	char msg[120];
};

static void on_int(int sig)
{
	(void)sig;
	got_int = 1;
}

static long tty_nr(void)
{
	char buf[512];
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	long pid, ppid, pgrp, sid, tty;
	char st;
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %ld %ld %ld %ld", &st, &ppid, &pgrp, &sid, &tty) != 5)
		return -1;
	(void)pid;
	return tty;
}

static void report(char who, const char *msg)
{
	struct report r = { .who = who };
	snprintf(r.msg, sizeof(r.msg), "%s", msg);
	if (write(res[1], &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

/* J: the foreground job. */
static void run_job(pid_t leader)
{
	char why[120] = "";
	setpgid(0, 0);
	signal(SIGINT, on_int);
	int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (tty < 0)
		test_die("J: open /dev/tty: %s", strerror(errno));
	long nr = tty_nr();
	if (write(rdy[1], "j", 1) != 1)
		_exit(3);
	test_wait();
	if (getsid(0) != leader || getpgrp() != getpid())
		snprintf(why, sizeof(why), "J: session %d group %d", getsid(0), getpgrp());
	else if (tcgetpgrp(tty) != getpid())
		snprintf(why, sizeof(why), "J: foreground group is %d, not %d", tcgetpgrp(tty), getpid());
	else if (tty_nr() != nr)
		snprintf(why, sizeof(why), "J: tty_nr %ld, was %ld", tty_nr(), nr);
	else if (write(tty, "J-ok\n", 5) != 5)
		snprintf(why, sizeof(why), "J: write to /dev/tty: %s", strerror(errno));
	for (int i = 0; i < 300 && !got_int; i++)
		usleep(10000);
	if (!why[0] && !got_int)
		snprintf(why, sizeof(why), "J: no SIGINT from ^C on the terminal");
	report('J', why);
	_exit(0);
}

/* L: the session leader. */
static void run_leader(const char *name)
{
	char why[120] = "";
	signal(SIGINT, on_int);
	if (setsid() < 0)
		test_die("setsid: %s", strerror(errno));
	int s = open(name, O_RDWR | O_CLOEXEC); /* no O_NOCTTY: our terminal now */
	if (s < 0)
		test_die("open %s: %s", name, strerror(errno));
	pid_t j = fork();
	if (j == 0)
		run_job(getppid());
	setpgid(j, j);
	if (tcsetpgrp(s, j) < 0)
		test_die("tcsetpgrp: %s", strerror(errno));
	long nr = tty_nr();
	if (write(rdy[1], "l", 1) != 1)
		_exit(3);
	test_wait();
	kill(j, SIGUSR1);
	if (getsid(0) != getpid() || tcgetsid(s) != getpid())
		snprintf(why, sizeof(why), "L: session %d, terminal's session %d", getsid(0), tcgetsid(s));
	else if (tty_nr() != nr)
		snprintf(why, sizeof(why), "L: tty_nr %ld, was %ld", tty_nr(), nr);
	else if (tcgetpgrp(s) != j)
		snprintf(why, sizeof(why), "L: foreground group %d, not %d", tcgetpgrp(s), j);
	int st;
	waitpid(j, &st, 0);
	if (!why[0] && got_int)
		snprintf(why, sizeof(why), "L: got the ^C meant for the foreground group");
	report('L', why);
	_exit(0);
}

int main(int argc, char **argv)
{
	char name[64], buf[256];
	test_init(argc, argv);
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)))
		test_die("posix_openpt: %s", strerror(errno));
	if (pipe(res) < 0 || pipe(rdy) < 0)
		test_die("pipe");
	pid_t l = fork();
	if (l == 0)
		run_leader(name);
	close(rdy[1]);
	for (int got = 0; got < 2;)
		if (read(rdy[0], buf, 1) == 1)
			got++;
		else
			test_die("a child did not get ready");
	test_ready();
	test_wait();
	kill(l, SIGUSR1);

	/* J's line through /dev/tty, then ^C for the foreground group. */
	size_t have = 0;
	struct pollfd pf = { .fd = m, .events = POLLIN };
	while (!memmem(buf, have, "J-ok\r\n", 6) && have < sizeof(buf) && poll(&pf, 1, 3000) > 0) {
		ssize_t n = read(m, buf + have, sizeof(buf) - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	check(memmem(buf, have, "J-ok\r\n", 6), "the master read '%.*s', not J's line", (int)have, buf);
	if (write(m, "\x03", 1) != 1)
		fail("write ^C");
	for (int i = 0; i < 2; i++) {
		struct report r;
		if (read(res[0], &r, sizeof(r)) != sizeof(r)) {
			fail("a child did not report");
			break;
		}
		check(!r.msg[0], "%s", r.msg);
	}
	waitpid(l, NULL, 0);
	test_done();
}
