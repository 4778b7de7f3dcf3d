/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holds an inotify fd (unsupported): dump must fail naming the pid, the fd and
 * its kind, and leave this process running; it then passes when signalled. */
#include "zdtmtst.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int ifd;
	char *heap;

	test_init(argc, argv);
	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, ".", IN_CREATE) < 0)
		test_die("inotify: %s", strerror(errno));
	heap = malloc(1 << 20);
	test_fill(heap, 1 << 20, 99);
	test_msg("inotify is fd %d", ifd);

	test_ready();
	test_wait();

	char ev[256];
	check(read(ifd, ev, sizeof(ev)) < 0 && errno == EAGAIN, "inotify fd has unexpected events");
	check(test_verify(heap, 1 << 20, 99) < 0, "heap changed");
	test_done();
}
