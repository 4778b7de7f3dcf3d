/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inotify watches on inodes that have no name any more: a file deleted
 * while open (and watched) and a directory removed while open, next to
 * a watch on the working directory. After restore the watch numbers are
 * the same and a write into the deleted file, or a change of the removed
 * directory's mode, still raises an event on its watch.
 *
 * stasis-test: zdtm:inotify_deleted
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmtst.h"

static void drain(int in)
{
	char buf[4096];
	while (read(in, buf, sizeof(buf)) > 0)
		;
}

/* The next event, waiting up to 5 s. */
static bool next_event(int in, int wd, uint32_t mask, const char *what)
{
	char buf[4096] __attribute__((aligned(8)));
	for (int i = 0; i < 500; i++) {
		ssize_t n = read(in, buf, sizeof(buf));
		for (ssize_t at = 0; n > 0 && at < n;) {
			struct inotify_event *e = (struct inotify_event *)(buf + at);
			if (e->wd == wd && (e->mask & mask))
				return true;
			test_msg("%s: event wd %d mask %#x", what, e->wd, e->mask);
			at += (ssize_t)sizeof(*e) + e->len;
		}
		usleep(10000);
	}
	return false;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int f = open("gone.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || f < 0 || mkdir("gone.d", 0700) < 0)
		test_die("setup: %m");
	int d = open("gone.d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int wcwd = inotify_add_watch(in, ".", IN_CREATE);
	int wf = inotify_add_watch(in, "gone.dat", IN_MODIFY);
	int wd = inotify_add_watch(in, "gone.d", IN_ATTRIB);
	if (d < 0 || wcwd < 0 || wf < 0 || wd < 0 || unlink("gone.dat") < 0 || rmdir("gone.d") < 0)
		test_die("watches: %m");
	drain(in);
	test_ready();
	test_wait();
	check(write(f, "x", 1) == 1, "write: %m");
	check(next_event(in, wf, IN_MODIFY, "file"), "no IN_MODIFY on watch %d of the deleted file", wf);
	check(fchmod(d, 0750) == 0, "fchmod: %m");
	check(next_event(in, wd, IN_ATTRIB, "dir"), "no IN_ATTRIB on watch %d of the removed directory", wd);
	int c = open("new", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	check(c >= 0 && next_event(in, wcwd, IN_CREATE, "cwd"), "no IN_CREATE on watch %d of the cwd", wcwd);
	unlink("new");
	test_done();
}
