/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holds a userfaultfd (unsupported): dump must fail naming the pid, the fd
 * and its kind, and leave this process running; it then passes when
 * signalled.
 *
 * stasis-test: zdtm:unsupported_fd dump=no  # dumping it is fail:unsupported_fd
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int ufd;
	char *heap;

	test_init(argc, argv);
	ufd = (int)syscall(SYS_userfaultfd, O_NONBLOCK | O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (ufd < 0)
		test_die("userfaultfd: %s", strerror(errno));
	heap = malloc(1 << 20);
	test_fill(heap, 1 << 20, 99);
	test_msg("userfaultfd is fd %d", ufd);

	test_ready();
	test_wait();

	check(fcntl(ufd, F_GETFD) == FD_CLOEXEC, "userfaultfd is gone or lost FD_CLOEXEC");
	check(test_verify(heap, 1 << 20, 99) < 0, "heap changed");
	test_done();
}
