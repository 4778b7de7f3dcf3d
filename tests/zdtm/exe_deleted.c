/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A process whose executable has no name: it copies itself into a memfd
 * and runs that with execveat(AT_EMPTY_PATH) (args=memfd), or into a
 * file it runs and then deletes (args=file, a binary replaced under a
 * running program). After restore it still runs, /proc/self/exe still
 * names the memfd or the deleted file, and its text (mapped from it) is
 * intact.
 *
 * stasis-test: zdtm:exe_deleted:memfd args=memfd
 * stasis-test: zdtm:exe_deleted:file args=file
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmtst.h"

extern char **environ;

static void copy_self(int to)
{
	int from = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (from < 0 || fstat(from, &st) < 0 || sendfile(to, from, NULL, (size_t)st.st_size) != st.st_size)
		test_die("copy: %m");
	close(from);
}

static void exec_copy(const char *how, char **argv)
{
	char *args[] = { argv[0], (char *)how, (char *)"copy", NULL };
	if (!strcmp(how, "memfd")) {
		int fd = memfd_create("zdtm-exe", MFD_CLOEXEC);
		copy_self(fd);
		syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
		test_die("execveat: %m");
	}
	int fd = open("exe.copy", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	copy_self(fd);
	close(fd);
	execve("exe.copy", args, environ);
	test_die("execve: %m");
}

static int exe_link(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

int main(int argc, char **argv)
{
	char before[4096], after[4096];
	if (argc < 2)
		test_die("usage: exe_deleted memfd|file");
	if (argc < 3)
		exec_copy(argv[1], argv);
	test_init(argc, argv);
	if (!strcmp(argv[1], "file") && unlink("exe.copy") < 0)
		test_die("unlink: %m");
	if (exe_link(before, sizeof(before)) < 0)
		test_die("readlink: %m");
	test_msg("running as %s", before);
	test_ready();
	test_wait();
	check(exe_link(after, sizeof(after)) == 0 && !strcmp(before, after), "exe is '%s', was '%s'", after, before);
	check(strstr(after, " (deleted)") != NULL, "exe '%s' has a name again", after);
	check(!strcmp(argv[1], "file") || strstr(after, "/memfd:zdtm-exe") == after, "exe '%s' is no memfd", after);
	test_done();
}
