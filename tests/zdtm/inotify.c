/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inotify: watches on a directory and a file, a gap in the watch numbers
 * (a removed watch) and a second, blocking instance. After restore,
 * creating a file in the directory and writing the file report events with
 * the old watch numbers, nothing else is queued, and a new watch gets the
 * number that comes next.
 *
 * stasis-test: zdtm:inotify
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static char evbuf[4096] __attribute__((aligned(8)));

/* Reads what is queued; returns the number of events, the first in *ret. */
static int read_events(int fd, struct inotify_event *ret, char *name, size_t size)
{
	ssize_t n = read(fd, evbuf, sizeof(evbuf));
	int count = 0;
	for (ssize_t off = 0; n > 0 && off < n; count++) {
		struct inotify_event *e = (struct inotify_event *)(evbuf + off);
		if (count == 0) {
			*ret = *e;
			snprintf(name, size, "%s", e->len ? e->name : "");
		}
		test_msg("event wd %d mask %#x name '%s'", e->wd, e->mask, e->len ? e->name : "");
		off += (ssize_t)sizeof(*e) + e->len;
	}
	return count;
}

int main(int argc, char **argv)
{
	struct inotify_event ev;
	char name[NAME_MAX + 1];

	test_init(argc, argv);
	if (mkdir("wdir", 0700) < 0 || mkdir("gone", 0700) < 0 || mkdir("later", 0700) < 0)
		test_die("mkdir: %s", strerror(errno));
	int f = open("wfile", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int ifd2 = inotify_init1(0);
	if (f < 0 || ifd < 0 || ifd2 < 0)
		test_die("setup: %s", strerror(errno));
	int w1 = inotify_add_watch(ifd, "wdir", IN_CREATE | IN_DELETE);
	int wg = inotify_add_watch(ifd, "gone", IN_CREATE);
	int wg2 = inotify_add_watch(ifd, "later", IN_CREATE);
	int w3 = inotify_add_watch(ifd, "wfile", IN_MODIFY | IN_ONESHOT);
	int w4 = inotify_add_watch(ifd2, ".", IN_ATTRIB);
	if (w1 < 0 || wg < 0 || wg2 < 0 || w3 < 0 || w4 < 0 || inotify_rm_watch(ifd, wg) < 0 ||
	    inotify_rm_watch(ifd, wg2) < 0)
		test_die("inotify: %s", strerror(errno));
	while (read(ifd, evbuf, sizeof(evbuf)) > 0) /* the two IN_IGNORED */
		;
	test_msg("watches: %d %d (removed %d %d), second instance %d", w1, w3, wg, wg2, w4);

	test_ready();
	test_wait();

	check((fcntl(ifd, F_GETFL) & O_NONBLOCK) && (fcntl(ifd, F_GETFD) & FD_CLOEXEC), "inotify fd lost its flags");
	check(!(fcntl(ifd2, F_GETFL) & O_NONBLOCK), "the second inotify fd became nonblocking");
	check(read_events(ifd, &ev, name, sizeof(name)) == 0, "events queued after restore");
	int c = open("wdir/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (c >= 0)
		close(c);
	check(read_events(ifd, &ev, name, sizeof(name)) == 1 && ev.wd == w1 && (ev.mask & IN_CREATE) &&
	      strcmp(name, "new") == 0, "creating wdir/new: wd %d mask %#x name '%s', expected wd %d IN_CREATE new",
	      ev.wd, ev.mask, name, w1);
	check(write(f, "x", 1) == 1, "write: %s", strerror(errno));
	int n = read_events(ifd, &ev, name, sizeof(name));
	check(n >= 1 && ev.wd == w3 && (ev.mask & IN_MODIFY), "writing wfile: %d events, wd %d mask %#x, expected wd %d",
	      n, ev.wd, ev.mask, w3);
	if (chmod(".", 0755) == 0)
		check(read_events(ifd2, &ev, name, sizeof(name)) >= 1 && ev.wd == w4 && (ev.mask & IN_ATTRIB),
		      "second instance: wd %d mask %#x, expected wd %d IN_ATTRIB", ev.wd, ev.mask, w4);
	int w5 = inotify_add_watch(ifd, "gone", IN_CREATE);
	check(w5 == w3 + 1, "a new watch got wd %d, expected %d", w5, w3 + 1);
	test_done();
}
