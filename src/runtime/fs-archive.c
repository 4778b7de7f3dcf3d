/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A directory tree of a container (its writable layer, a tmpfs) saved into
 * the image as a pax archive, and put back, with libarchive: the archive
 * goes straight into the checksummed image stream. Kept as they are:
 * overlay whiteouts (character devices 0:0), opaque directories and other
 * extended attributes (trusted.* included: we are root), numeric owners,
 * modes, times, hard links (one copy of the data) and sparse files (holes
 * stay holes). Mount points below the tree are not crossed: what is mounted
 * there is not part of it.
 *
 * The archive is the image's, and an image is a program (DESIGN.md §5a):
 * extraction runs in a child chrooted into the destination, and libarchive
 * refuses absolute paths, '..' and paths through symlinks on top of that.
 * Any entry it cannot restore exactly fails the whole operation, naming
 * the entry. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/util.h"

#define BLOCK (64u << 10)

/* libarchive and its compression libraries are loaded only for container
 * file systems (see util/dynlib.h). */
#define ARCHIVE_FNS(X) \
	X(archive_entry_clear) X(archive_entry_copy_pathname) X(archive_entry_filetype) \
	X(archive_entry_free) X(archive_entry_hardlink) X(archive_entry_linkify) \
	X(archive_entry_linkresolver_free) X(archive_entry_linkresolver_new) \
	X(archive_entry_linkresolver_set_strategy) X(archive_entry_new) X(archive_entry_pathname) \
	X(archive_entry_size) X(archive_errno) X(archive_error_string) X(archive_format) \
	X(archive_read_data_block) X(archive_read_disk_descend) X(archive_read_disk_new) \
	X(archive_read_disk_open) X(archive_read_disk_set_behavior) \
	X(archive_read_disk_set_symlink_physical) X(archive_read_free) X(archive_read_new) \
	X(archive_read_next_header) X(archive_read_next_header2) X(archive_read_open_fd) \
	X(archive_read_support_format_tar) X(archive_set_error) X(archive_write_close) \
	X(archive_write_data) X(archive_write_data_block) X(archive_write_disk_new) \
	X(archive_write_disk_set_options) X(archive_write_finish_entry) X(archive_write_free) \
	X(archive_write_header) X(archive_write_new) X(archive_write_open2) \
	X(archive_write_set_bytes_in_last_block) X(archive_write_set_format_pax_restricted)

static struct {
	ARCHIVE_FNS(DYNLIB_PTR)
} la;
static const char *const la_names[] = { ARCHIVE_FNS(DYNLIB_NAME) };
static struct dynlib la_lib = { "libarchive.so.13", "to save and restore container file systems", "libarchive13",
				la_names, (void **)&la, ARRAY_SIZE(la_names), 0 };

struct saver {
	struct image_stream *s;
	int err;
};

static la_ssize_t stream_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct saver *w = arg;
	int r = image_stream_write(w->s, buf, len);
	if (r < 0) {
		w->err = r;
		la.archive_set_error(a, -r, "cannot write the image");
		return -1;
	}
	return (la_ssize_t)len;
}

/* The libarchive error of a, as -errno (EIO when it has none). */
static int archive_errno_of(struct archive *a)
{
	int e = la.archive_errno(a);
	return e > 0 ? -e : -EIO;
}

static const char *archive_msg(struct archive *a)
{
	const char *m = la.archive_error_string(a);
	return m ? m : "unknown error";
}

/* The entry's name in the archive: "." for dir itself, "./rest" below. */
static int relative_name(struct archive_entry *e, const char *dir)
{
	const char *p = la.archive_entry_pathname(e);
	size_t l = strlen(dir);
	if (!p || strncmp(p, dir, l) || (p[l] && p[l] != '/'))
		return -EINVAL;
	_cleanup_free_ char *rel = NULL;
	if (asprintf(&rel, ".%s", p + l) < 0)
		return -ENOMEM;
	la.archive_entry_copy_pathname(e, rel);
	return 0;
}

/* The file's data, holes written as zeros: the pax writer leaves out the
 * holes of an entry whose sparse map read_disk filled in. */
static int copy_data(struct archive *disk, struct archive *out)
{
	static const char zeros[BLOCK];
	const void *buf;
	size_t len;
	la_int64_t off, done = 0;
	int r;
	while ((r = la.archive_read_data_block(disk, &buf, &len, &off)) == ARCHIVE_OK) {
		while (done < off) {
			size_t n = off - done < (la_int64_t)BLOCK ? (size_t)(off - done) : BLOCK;
			if (la.archive_write_data(out, zeros, n) < 0)
				return -1;
			done += (la_int64_t)n;
		}
		if (len && la.archive_write_data(out, buf, len) < 0)
			return -1;
		done = off + (la_int64_t)len;
	}
	return r == ARCHIVE_EOF ? 0 : -2;
}

/* One entry of the walk into the archive. 0, or -1 (error in out), -2
 * (error in disk). */
static int save_entry(struct archive *disk, struct archive *out, struct archive_entry_linkresolver *lr,
		      struct archive_entry *e, const char *dir)
{
	struct archive_entry *spare = NULL;
	if (relative_name(e, dir) < 0) {
		la.archive_set_error(disk, EINVAL, "'%s' is not below %s", la.archive_entry_pathname(e), dir);
		return -2;
	}
	/* The tar strategy hands the entry back at once, a later link to
	 * the same inode as a hard link without data. */
	la.archive_entry_linkify(lr, &e, &spare);
	la.archive_entry_free(spare);
	if (!e)
		return 0;
	if (la.archive_write_header(out, e) != ARCHIVE_OK)
		return -1;
	if (la.archive_entry_filetype(e) == AE_IFREG && la.archive_entry_size(e) > 0 && !la.archive_entry_hardlink(e))
		return copy_data(disk, out);
	return 0;
}

/* Walks dir (physical: symlinks are saved, not followed) into out. */
static int walk(struct archive *disk, struct archive *out, const char *dir, struct archive **ret_failed)
{
	struct archive_entry_linkresolver *lr = la.archive_entry_linkresolver_new();
	struct archive_entry *e = la.archive_entry_new();
	int r = lr && e ? 0 : -2;
	if (r == 0) {
		la.archive_entry_linkresolver_set_strategy(lr, la.archive_format(out));
		r = la.archive_read_disk_open(disk, dir) == ARCHIVE_OK ? 0 : -2;
	}
	while (r == 0) {
		la.archive_entry_clear(e);
		int h = la.archive_read_next_header2(disk, e);
		if (h == ARCHIVE_EOF)
			break;
		if (h != ARCHIVE_OK) {
			r = -2;
			break;
		}
		la.archive_read_disk_descend(disk);
		r = save_entry(disk, out, lr, e, dir);
	}
	la.archive_entry_free(e);
	la.archive_entry_linkresolver_free(lr);
	*ret_failed = r == -1 ? out : disk;
	return r;
}

static struct archive *new_writer(struct saver *w)
{
	struct archive *a = la.archive_write_new();
	if (!a)
		return NULL;
	if (la.archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    la.archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    la.archive_write_open2(a, w, NULL, stream_write, NULL, NULL) != ARCHIVE_OK) {
		la.archive_write_free(a);
		return NULL;
	}
	return a;
}

static struct archive *new_disk_reader(void)
{
	struct archive *a = la.archive_read_disk_new();
	if (a && (la.archive_read_disk_set_symlink_physical(a) != ARCHIVE_OK ||
		  la.archive_read_disk_set_behavior(a, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) != ARCHIVE_OK)) {
		la.archive_read_free(a);
		return NULL;
	}
	return a;
}

int rt_archive_save(struct image *img, const char *dir, const char *name)
{
	struct saver w = { 0 };
	struct archive *out = NULL, *disk = NULL, *failed = NULL;
	int r = dynlib_load(&la_lib);
	if (r < 0 || (r = image_stream_open(img, name, &w.s)) < 0)
		return r;
	if (!(out = new_writer(&w)) || !(disk = new_disk_reader()))
		r = -ENOMEM;
	else if (walk(disk, out, dir, &failed) < 0 || (failed = out, la.archive_write_close(out) != ARCHIVE_OK))
		r = w.err ? w.err : archive_errno_of(failed);
	if (r < 0)
		log_error_errno(r, "cannot save %s of the container (%s): %s", name, dir,
				failed ? archive_msg(failed) : "out of memory");
	la.archive_read_free(disk);
	la.archive_write_free(out);
	if (r < 0) {
		image_stream_abort(w.s);
		return r;
	}
	return image_stream_close(w.s);
}

#define EXTRACT_FLAGS                                                                                          \
	(ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |        \
	 ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_SYMLINKS |                     \
	 ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS)

/* The entry's data, at its offsets: holes stay holes. */
static int extract_data(struct archive *in, struct archive *out)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = la.archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
		if (la.archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
			return -1;
	return r == ARCHIVE_EOF ? 0 : -2;
}

/* Extracts the archive on fd into the current directory; logs what fails,
 * naming the entry. */
static int extract(int fd, const char *name, const char *dest)
{
	struct archive *in = la.archive_read_new(), *out = la.archive_write_disk_new();
	struct archive_entry *e = NULL;
	struct archive *failed = in;
	int r = 0;
	if (!in || !out || la.archive_read_support_format_tar(in) != ARCHIVE_OK ||
	    la.archive_write_disk_set_options(out, EXTRACT_FLAGS) != ARCHIVE_OK ||
	    la.archive_read_open_fd(in, fd, BLOCK) != ARCHIVE_OK)
		r = -2;
	while (r == 0) {
		int h = la.archive_read_next_header(in, &e);
		if (h == ARCHIVE_EOF)
			break;
		if (h != ARCHIVE_OK)
			r = -2;
		else if (la.archive_write_header(out, e) != ARCHIVE_OK)
			r = -1;
		else if (la.archive_entry_size(e) > 0 && (r = extract_data(in, out)) < 0)
			;
		else if (la.archive_write_finish_entry(out) != ARCHIVE_OK)
			r = -1;
	}
	if (r == 0 && la.archive_write_close(out) != ARCHIVE_OK)
		r = -1, e = NULL;
	if (r < 0) {
		failed = r == -1 ? out : in;
		r = in && out ? archive_errno_of(failed) : -ENOMEM;
		log_error_errno(r, "cannot apply %s of the image to %s%s%s: %s", name, dest, e ? ": entry " : "",
				e ? la.archive_entry_pathname(e) : "", in && out ? archive_msg(failed) : "out of memory");
	}
	la.archive_read_free(in);
	la.archive_write_free(out);
	return r;
}

int rt_archive_apply(struct image *img, const char *name, const char *dest)
{
	_cleanup_close_ int fd = -1;
	uint64_t size;
	int status;
	/* Checked against the manifest before anything of it is used. */
	int r = image_verify_file(img, name);
	/* Loaded here: the child below is chrooted into dest. */
	if (r < 0 || (r = dynlib_load(&la_lib)) < 0 || (r = image_open_file(img, name, &fd, &size)) < 0)
		return r;
	/* A child, so that the chroot and the working directory (relative
	 * paths are libarchive's only way to a destination) are not ours. */
	pid_t pid = fork();
	if (pid < 0)
		return log_error_errno(-errno, "cannot apply %s of the image to %s: fork: %m", name, dest);
	if (pid == 0) {
		if (chdir(dest) < 0 || chroot(".") < 0) {
			log_error_errno(-errno, "cannot apply %s of the image to %s: %m", name, dest);
			_exit(1);
		}
		_exit(extract(fd, name, dest) < 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return log_error_errno(-errno, "cannot wait for pid %d: %m", pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!WIFEXITED(status))
		log_error("cannot apply %s of the image to %s: the extracting child died of signal %d", name, dest,
			  WTERMSIG(status));
	return -EIO;
}
