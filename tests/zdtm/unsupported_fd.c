/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holds an eventfd (unsupported): dump must fail naming the pid, the fd and
 * its kind, and leave this process running; it then passes when signalled. */
#include "zdtmtst.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int efd;
	uint64_t v = 0;
	char *heap;

	test_init(argc, argv);
	efd = eventfd(5, 0);
	if (efd < 0)
		test_die("eventfd: %s", strerror(errno));
	heap = malloc(1 << 20);
	test_fill(heap, 1 << 20, 99);
	test_msg("eventfd is fd %d", efd);

	test_ready();
	test_wait();

	check(read(efd, &v, sizeof(v)) == sizeof(v) && v == 5, "eventfd value %llu, expected 5", (unsigned long long)v);
	check(test_verify(heap, 1 << 20, 99) < 0, "heap changed");
	test_done();
}
