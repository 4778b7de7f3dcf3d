/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regular file descriptors: offsets (read and write), O_APPEND, access
 * modes, O_NONBLOCK, FD_CLOEXEC, a dup at fd 100 sharing its file
 * description, a directory fd, /dev/null, /dev/zero, /dev/urandom, and a
 * file deleted while open (content and offset preserved).
 *
 * stasis-test: zdtm:files
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SZ 10000

struct fdrec {
	const char *name;
	int fd;
	int fl, fdfl;
	off_t pos;
	struct stat st;
	int check_ino;
};

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		test_die("open %s: %s", path, strerror(errno));
	return fd;
}

static int list_fds(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0, self = dirfd(d);

	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != self && n < max)
			fds[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

static int has_fd(const int *fds, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (fds[i] == fd)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char buf[SZ], rd[SZ];
	struct fdrec f[16];
	int n = 0, rw, ro, wo, ap, dirfd_, dnull, dzero, drand, gone, dup100, fds_before[256], fds_after[256], nb, na;

	test_init(argc, argv);
	test_fill(buf, SZ, 7);
	{
		int fd = xopen("rw.dat", O_RDWR | O_CREAT | O_TRUNC);
		if (write(fd, buf, SZ) != SZ)
			test_die("write");
		close(fd);
		fd = xopen("ro.dat", O_RDWR | O_CREAT | O_TRUNC);
		if (write(fd, buf, SZ) != SZ)
			test_die("write");
		close(fd);
	}
	rw = xopen("rw.dat", O_RDWR | O_CLOEXEC);
	lseek(rw, 1234, SEEK_SET);
	ro = xopen("ro.dat", O_RDONLY | O_NONBLOCK);
	if (read(ro, rd, 777) != 777)
		test_die("read ro.dat");
	wo = xopen("wo.dat", O_WRONLY | O_CREAT | O_TRUNC);
	if (write(wo, buf, 5000) != 5000)
		test_die("write wo.dat");
	ap = xopen("append.log", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
	if (write(ap, "line1\n", 6) != 6)
		test_die("write append.log");
	lseek(ap, 2, SEEK_SET); /* append fds can have any position */
	dirfd_ = xopen(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dnull = xopen("/dev/null", O_WRONLY);
	dzero = xopen("/dev/zero", O_RDONLY | O_CLOEXEC);
	drand = xopen("/dev/urandom", O_RDONLY);
	gone = xopen("gone.dat", O_RDWR | O_CREAT | O_TRUNC);
	if (write(gone, buf, 8192) != 8192)
		test_die("write gone.dat");
	lseek(gone, 3000, SEEK_SET);
	unlink("gone.dat");
	dup100 = dup2(rw, 100); /* shares rw's description, without FD_CLOEXEC */
	if (dup100 != 100)
		test_die("dup2: %s", strerror(errno));

	f[n++] = (struct fdrec){ "rw.dat", rw, .check_ino = 1 };
	f[n++] = (struct fdrec){ "ro.dat", ro, .check_ino = 1 };
	f[n++] = (struct fdrec){ "wo.dat", wo, .check_ino = 1 };
	f[n++] = (struct fdrec){ "append.log", ap, .check_ino = 1 };
	f[n++] = (struct fdrec){ "dir", dirfd_, .check_ino = 1 };
	f[n++] = (struct fdrec){ "/dev/null", dnull, .check_ino = 1 };
	f[n++] = (struct fdrec){ "/dev/zero", dzero, .check_ino = 1 };
	f[n++] = (struct fdrec){ "/dev/urandom", drand, .check_ino = 1 };
	f[n++] = (struct fdrec){ "gone.dat (deleted)", gone, .check_ino = 0 };
	f[n++] = (struct fdrec){ "fd 100", dup100, .check_ino = 1 };
	for (int i = 0; i < n; i++) {
		f[i].fl = fcntl(f[i].fd, F_GETFL);
		f[i].fdfl = fcntl(f[i].fd, F_GETFD);
		f[i].pos = lseek(f[i].fd, 0, SEEK_CUR);
		fstat(f[i].fd, &f[i].st);
	}
	nb = list_fds(fds_before, 256);

	test_ready();
	test_wait();

	na = list_fds(fds_after, 256);
	check(na == nb, "%d fds open, was %d", na, nb);
	for (int i = 0; i < nb; i++)
		check(has_fd(fds_after, na, fds_before[i]), "fd %d missing", fds_before[i]);
	for (int i = 0; i < n; i++) {
		struct stat st;
		int fl = fcntl(f[i].fd, F_GETFL), fdfl = fcntl(f[i].fd, F_GETFD);
		off_t pos = lseek(f[i].fd, 0, SEEK_CUR);

		if (fl < 0) {
			fail("%s: fd %d not open", f[i].name, f[i].fd);
			continue;
		}
		check(fl == f[i].fl, "%s: file flags %#o, were %#o", f[i].name, fl, f[i].fl);
		check(fdfl == f[i].fdfl, "%s: fd flags %#x, were %#x", f[i].name, fdfl, f[i].fdfl);
		if (S_ISREG(f[i].st.st_mode) || S_ISDIR(f[i].st.st_mode))
			check(pos == f[i].pos, "%s: position %lld, was %lld", f[i].name, (long long)pos, (long long)f[i].pos);
		fstat(f[i].fd, &st);
		check((st.st_mode & S_IFMT) == (f[i].st.st_mode & S_IFMT), "%s: file type changed", f[i].name);
		check(st.st_rdev == f[i].st.st_rdev, "%s: rdev %u:%u, was %u:%u", f[i].name, major(st.st_rdev),
		      minor(st.st_rdev), major(f[i].st.st_rdev), minor(f[i].st.st_rdev));
		if (f[i].check_ino)
			check(st.st_ino == f[i].st.st_ino && st.st_dev == f[i].st.st_dev, "%s: inode changed", f[i].name);
		check(st.st_size == f[i].st.st_size || S_ISDIR(st.st_mode), "%s: size %lld, was %lld", f[i].name,
		      (long long)st.st_size, (long long)f[i].st.st_size);
	}
	/* reads and writes continue where they were */
	check(read(rw, rd, 100) == 100 && !memcmp(rd, buf + 1234, 100), "rw.dat: read at 1234 wrong");
	check(lseek(100, 0, SEEK_CUR) == 1334, "fd 100 does not share rw.dat's offset (at %lld)",
	      (long long)lseek(100, 0, SEEK_CUR));
	check(write(rw, "ABCD", 4) == 4 && pread(ro, rd, 4, 1334) == 4 && !memcmp(rd, buf + 1334, 4),
	      "rw.dat write / ro.dat unchanged");
	check(read(ro, rd, 100) == 100 && !memcmp(rd, buf + 777, 100), "ro.dat: read at 777 wrong");
	check(write(ro, "x", 1) < 0 && errno == EBADF, "ro.dat became writable");
	check(read(wo, rd, 1) < 0 && errno == EBADF, "wo.dat became readable");
	check(write(wo, buf + 5000, 1000) == 1000, "wo.dat: write");
	{
		int fd = open("wo.dat", O_RDONLY);
		check(fd >= 0 && read(fd, rd, SZ) == 6000 && !memcmp(rd, buf, 6000), "wo.dat content after write wrong");
		close(fd);
	}
	check(write(ap, "line2\n", 6) == 6, "append.log: write");
	{
		int fd = open("append.log", O_RDONLY);
		check(fd >= 0 && read(fd, rd, SZ) == 12 && !memcmp(rd, "line1\nline2\n", 12),
		      "append.log: O_APPEND write did not go to the end");
		close(fd);
	}
	{
		int fd = openat(dirfd_, "rw.dat", O_RDONLY);
		check(fd >= 0, "openat(dirfd, rw.dat): %s", strerror(errno));
		close(fd);
	}
	check(write(dnull, buf, 100) == 100, "/dev/null: write");
	memset(rd, 1, 64);
	check(read(dzero, rd, 64) == 64 && !rd[0] && !rd[63], "/dev/zero: read");
	check(read(drand, rd, 16) == 16, "/dev/urandom: read");
	{
		struct stat st;
		fstat(gone, &st);
		check(st.st_nlink == 0, "gone.dat: nlink %ld, expected 0 (deleted)", (long)st.st_nlink);
		check(read(gone, rd, 5192) == 5192 && !memcmp(rd, buf + 3000, 5192), "gone.dat: content at 3000 wrong");
		check(pread(gone, rd, 3000, 0) == 3000 && !memcmp(rd, buf, 3000), "gone.dat: content at 0 wrong");
		check(access("gone.dat", F_OK) < 0, "gone.dat reappeared in the directory");
	}
	test_done();
}
