/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* membarrier registrations: registered for private expedited barriers
 * (and their RSEQ flavour), not for SYNC_CORE; a second thread runs. After
 * restore the registered commands work and the other still fails with
 * EPERM, as before.
 *
 * stasis-test: zdtm:membarrier
 */
#include "zdtmtst.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long mb(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static void *spin(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	test_init(argc, argv);
	if (mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) < 0 || mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) < 0)
		test_die("membarrier register: %s", strerror(errno));
	pthread_create(&t, NULL, spin, NULL);
	check(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) < 0 && errno == EPERM, "setup: SYNC_CORE works unregistered");

	test_ready();
	test_wait();

	check(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0, "private expedited: %s (registration lost)", strerror(errno));
	check(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) == 0, "private expedited rseq: %s (registration lost)",
	      strerror(errno));
	errno = 0;
	check(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) < 0 && errno == EPERM,
	      "sync-core: registered after restore (errno %d)", errno);
	test_done();
}
