/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* memfd seals: one sealed against writes, growing and shrinking (held as
 * an fd, also mapped read-only), one sealed against further seals, one
 * made without MFD_ALLOW_SEALING. After restore each has the same seals
 * (F_GET_SEALS), they still hold, and the content is the same.
 *
 * stasis-test: zdtm:memfd_seals
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmtst.h"

#define LEN 8192

static int make(const char *name, unsigned flags, int seals, uint64_t seed)
{
	char buf[LEN];
	int fd = memfd_create(name, flags);
	test_fill(buf, LEN, seed);
	if (fd < 0 || write(fd, buf, LEN) != LEN || (seals && fcntl(fd, F_ADD_SEALS, seals) < 0))
		test_die("memfd %s: %s", name, strerror(errno));
	return fd;
}

static void check_content(int fd, uint64_t seed, const char *name)
{
	char buf[LEN];
	check(pread(fd, buf, LEN, 0) == LEN && test_verify(buf, LEN, seed) < 0, "memfd %s lost its content", name);
}

int main(int argc, char **argv)
{
	const int wseals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
	test_init(argc, argv);
	int w = make("sealed-write", MFD_CLOEXEC | MFD_ALLOW_SEALING, wseals, 1);
	int s = make("sealed-seal", MFD_ALLOW_SEALING, F_SEAL_SEAL | F_SEAL_GROW, 2);
	int n = make("no-sealing", MFD_CLOEXEC, 0, 3);
	const char *map = mmap(NULL, LEN, PROT_READ, MAP_SHARED, w, 0);
	if (map == MAP_FAILED)
		test_die("mmap: %s", strerror(errno));

	test_ready();
	test_wait();

	check(fcntl(w, F_GET_SEALS) == wseals, "write-sealed memfd has seals %#x, expected %#x", fcntl(w, F_GET_SEALS),
	      wseals);
	check(fcntl(s, F_GET_SEALS) == (F_SEAL_SEAL | F_SEAL_GROW), "seal-sealed memfd has seals %#x",
	      fcntl(s, F_GET_SEALS));
	check(fcntl(n, F_GET_SEALS) == F_SEAL_SEAL, "memfd without sealing has seals %#x", fcntl(n, F_GET_SEALS));
	check(pwrite(w, "x", 1, 0) < 0 && errno == EPERM, "write to the write-sealed memfd did not fail with EPERM");
	check(ftruncate(w, LEN * 2) < 0 && errno == EPERM, "the write-sealed memfd could grow");
	check(fcntl(s, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "sealing was not sealed");
	check(fcntl(n, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "memfd without sealing could be sealed");
	check_content(w, 1, "sealed-write");
	check_content(s, 2, "sealed-seal");
	check_content(n, 3, "no-sealing");
	check(test_verify(map, LEN, 1) < 0, "the read-only mapping lost its content");
	test_done();
}
