/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container layer archive (runtime/fs-archive.c) on a real
 * filesystem: a tree with what overlay and containers put in a writable
 * layer round-trips through an image exactly, and archives that try to
 * write outside the destination are refused. A tmpfs of the test's own
 * (in a mount namespace of its own) holds both trees: it takes trusted.*
 * and user.* xattrs, device nodes and holes. Needs root. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/util.h"

static char root[64];

static void path(char *buf, const char *dir, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s%s%s", root, dir, *rel ? "/" : "", rel);
}

static void put_file(const char *dir, const char *rel, const char *text, mode_t mode, uid_t uid, gid_t gid)
{
	char p[PATH_MAX];
	path(p, dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chown(p, uid, gid), 0);
	assert_int_equal(chmod(p, mode), 0);
}

/* A writable layer as overlay leaves it, and what programs put there. */
static void make_tree(void)
{
	char p[PATH_MAX], q[PATH_MAX];
	path(p, "src", "");
	assert_int_equal(mkdir(p, 0755), 0);
	put_file("src", "plain", "some text\n", 0640, 1234, 5678);
	assert_int_equal(setxattr(p, "user.note", "on the root", 11, 0) == 0 || errno == EOPNOTSUPP, 1);
	path(p, "src", "plain");
	assert_int_equal(setxattr(p, "user.note", "hello", 5, 0), 0);
	assert_int_equal(setxattr(p, "trusted.other", "x", 1, 0), 0);
	path(p, "src", "whiteout");
	assert_int_equal(mknod(p, S_IFCHR | 0000, makedev(0, 0)), 0);
	path(p, "src", "opaque");
	assert_int_equal(mkdir(p, 0710), 0);
	assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
	put_file("src", "opaque/inside", "in the opaque dir\n", 0600, 0, 0);
	path(p, "src", "plain");
	path(q, "src", "opaque/hardlink");
	assert_int_equal(link(p, q), 0);
	path(p, "src", "sticky");
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, 01777), 0);
	put_file("src", "setuid", "#!/bin/sh\n", 04755, 0, 0);
	put_file("src", "nomode", "", 0000, 65534, 65534);
	path(p, "src", "link");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(lchown(p, 42, 43), 0);
	path(p, "src", "fifo");
	assert_int_equal(mkfifo(p, 0620), 0);
	/* 64 MiB with one byte at 32 MiB: a hole on both sides. */
	path(p, "src", "sparse");
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "x", 1, 32 << 20), 1);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	close(fd);
	struct timespec t[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
	path(p, "src", "plain");
	assert_int_equal(utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW), 0);
	path(p, "src", "opaque");
	assert_int_equal(utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW), 0);
}

static void same_xattrs(const char *a, const char *b)
{
	char la[4096], lb[4096], va[256], vb[256];
	ssize_t na = llistxattr(a, la, sizeof(la)), nb = llistxattr(b, lb, sizeof(lb));
	assert_int_equal(na, nb);
	for (ssize_t o = 0; o < na; o += (ssize_t)strlen(la + o) + 1) {
		ssize_t x = lgetxattr(a, la + o, va, sizeof(va)), y = lgetxattr(b, la + o, vb, sizeof(vb));
		assert_int_equal(x, y);
		assert_memory_equal(va, vb, (size_t)x);
	}
}

static void same_file(const char *rel)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat x, y;
	path(a, "src", rel), path(b, "dst", rel);
	assert_int_equal(lstat(a, &x), 0);
	assert_int_equal(lstat(b, &y), 0);
	assert_int_equal(x.st_mode, y.st_mode);
	assert_int_equal(x.st_uid, y.st_uid);
	assert_int_equal(x.st_gid, y.st_gid);
	assert_int_equal(x.st_rdev, y.st_rdev);
	assert_int_equal(x.st_size, y.st_size);
	assert_int_equal(x.st_nlink, y.st_nlink);
	if (!S_ISLNK(x.st_mode) && !S_ISDIR(x.st_mode))
		assert_int_equal(x.st_mtim.tv_sec, y.st_mtim.tv_sec);
	same_xattrs(a, b);
}

static void same_contents(const char *rel, size_t size)
{
	char a[PATH_MAX], b[PATH_MAX];
	path(a, "src", rel), path(b, "dst", rel);
	_cleanup_free_ char *x = NULL, *y = NULL;
	size_t lx, ly;
	assert_int_equal(read_file_at(AT_FDCWD, a, size, &x, &lx), 0);
	assert_int_equal(read_file_at(AT_FDCWD, b, size, &y, &ly), 0);
	assert_int_equal(lx, ly);
	assert_memory_equal(x, y, lx);
}

static const char *const names[] = { "", "plain", "whiteout", "opaque", "opaque/inside", "opaque/hardlink",
				     "sticky", "setuid", "nomode", "link", "fifo", "sparse" };

static void test_roundtrip(void **state)
{
	char img_dir[PATH_MAX], dst[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct image *img;
	struct stat x, y;
	_cleanup_json_ json_t *body = json_pack("{s:s}", "type", "docker");
	make_tree();
	path(img_dir, "img", "");
	path(a, "src", "");
	assert_int_equal(image_create(img_dir, &img), 0);
	assert_int_equal(rt_archive_save(img, a, IMAGE_ROOTFS_DIFF), 0);
	assert_int_equal(image_commit(img, body), 0);
	image_free(img);
	/* Holes are not stored: the archive is far below 64 MiB. */
	path(a, "img", IMAGE_ROOTFS_DIFF);
	assert_int_equal(stat(a, &x), 0);
	assert_true(x.st_size < (1 << 20));
	path(dst, "dst", "");
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(image_open(img_dir, &img), 0);
	assert_int_equal(rt_archive_apply(img, IMAGE_ROOTFS_DIFF, dst), 0);
	image_free(img);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		same_file(names[i]);
	same_contents("plain", 4096);
	same_contents("sparse", 64 << 20);
	path(a, "dst", "plain"), path(b, "dst", "opaque/hardlink");
	assert_int_equal(stat(a, &x), 0);
	assert_int_equal(stat(b, &y), 0);
	assert_int_equal(x.st_ino, y.st_ino);
	assert_int_equal(x.st_mtim.tv_nsec, 987654321);
	path(a, "dst", "sparse");
	assert_int_equal(stat(a, &x), 0);
	assert_true(x.st_blocks * 512 < (1 << 20));
	path(a, "dst", "link");
	char target[64] = "";
	assert_int_equal(readlink(a, target, sizeof(target) - 1), 11);
	assert_string_equal(target, "/etc/passwd");
}

/* An archive of one bad entry (and the file a symlink trick would write
 * through), into the image as name. */
static void bad_archive(struct image *img, const char *name, const char *entry, const char *sym, const char *hard)
{
	char buf[64 << 10];
	size_t used = 0;
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, buf, sizeof(buf), &used), ARCHIVE_OK);
	if (sym) {
		archive_entry_set_pathname(e, "./up");
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, sym);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		archive_entry_clear(e);
	}
	archive_entry_set_pathname(e, entry);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	if (hard)
		archive_entry_set_hardlink(e, hard);
	else
		archive_entry_set_size(e, 4);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (!hard)
		assert_int_equal(archive_write_data(a, "evil", 4), 4);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
	assert_int_equal(image_put(img, name, buf, used), 0);
}

static void test_escapes(void **state)
{
	char img_dir[PATH_MAX], dst[PATH_MAX], victim[PATH_MAX], name[IMAGE_NAME_MAX], rel[PATH_MAX];
	struct image *img;
	_cleanup_json_ json_t *body = json_pack("{s:s}", "type", "docker");
	path(img_dir, "bad", "");
	path(victim, "victim", "");
	assert_int_equal(mkdir(victim, 0700), 0);
	put_file("victim", "target", "keep me\n", 0600, 0, 0);
	path(rel, "victim", "evil");
	assert_int_equal(image_create(img_dir, &img), 0);
	bad_archive(img, image_name_tmpfs(name, 0), "../victim/evil", NULL, NULL);
	bad_archive(img, image_name_tmpfs(name, 1), rel, NULL, NULL);
	bad_archive(img, image_name_tmpfs(name, 2), "./up/evil", victim, NULL);
	path(rel, "victim", "target");
	bad_archive(img, image_name_tmpfs(name, 3), "./hard", NULL, rel);
	bad_archive(img, image_name_tmpfs(name, 4), "./hard", NULL, "../victim/target");
	assert_int_equal(image_commit(img, body), 0);
	image_free(img);
	assert_int_equal(image_open(img_dir, &img), 0);
	for (size_t i = 0; i < 5; i++) {
		path(dst, "out", "");
		snprintf(dst + strlen(dst), 16, "%zu", i);
		assert_int_equal(mkdir(dst, 0700), 0);
		assert_true(rt_archive_apply(img, image_name_tmpfs(name, i), dst) < 0);
	}
	image_free(img);
	path(rel, "victim", "evil");
	assert_int_equal(access(rel, F_OK), -1);
	path(rel, "victim", "target");
	struct stat st;
	assert_int_equal(stat(rel, &st), 0);
	assert_int_equal(st.st_nlink, 1);
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/stasis-archive-XXXXXX");
	if (geteuid() != 0 || !mkdtemp(root))
		return -1;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", root, "tmpfs", 0, "size=256m") < 0) {
		rmdir(root);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	umount2(root, MNT_DETACH);
	rmdir(root);
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (mknod, trusted.* xattrs, chown)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_escapes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
