/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A deleted file and an unlinked FIFO in sub/d, both directories removed
 * after them. fail-free:deleted:fallback puts a plain file at sub before
 * the restore, so their old names cannot be made again: the file must
 * come back unnamed elsewhere (O_TMPFILE in the deepest directory left)
 * and the FIFO as a pipe, each with its content.
 *
 * stasis-build:  # started by deleted:fallback (t_deleted.py)
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmtst.h"

#define SZ 10000

int main(int argc, char **argv)
{
	char buf[SZ];
	struct stat st;
	test_init(argc, argv);
	test_fill(buf, SZ, 5);
	if (mkdir("sub", 0700) < 0 || mkdir("sub/d", 0700) < 0 || mkfifo("sub/d/p", 0600) < 0)
		test_die("mkdir: %m");
	int f = open("sub/d/f.dat", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int p = open("sub/d/p", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (f < 0 || p < 0 || write(f, buf, SZ) != SZ || write(p, "fifo-bytes", 10) != 10)
		test_die("setup: %m");
	if (unlink("sub/d/f.dat") < 0 || unlink("sub/d/p") < 0 || rmdir("sub/d") < 0 || rmdir("sub") < 0)
		test_die("remove: %m");
	test_ready();
	test_wait();
	char got[SZ];
	check(pread(f, got, SZ, 0) == SZ && !memcmp(got, buf, SZ), "the deleted file's content differs");
	check(fstat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 0777) == 0644,
	      "the deleted file is not an unnamed 0644 file");
	check(fstat(p, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is not a FIFO");
	check(read(p, got, sizeof(got)) == 10 && !memcmp(got, "fifo-bytes", 10), "the FIFO's bytes are lost");
	test_done();
}
