/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a checkpoint image. Nothing read from disk is trusted: the
 * manifest is size-capped and checked field by field, every listed file
 * must exist with exactly the listed size, and its checksum is verified
 * before its content is used. Problems are logged here, naming the file,
 * and returned as -EBADMSG (damaged or foreign) or -ENOENT (no image).
 *
 * An image is a program (DESIGN.md §5a): restoring it as root runs it as
 * root. So the directory and every file must belong to the reading user
 * or root and be writable by nobody else (-EPERM otherwise), and every
 * file is opened O_NOFOLLOW|O_NONBLOCK and checked to be a regular file
 * before a byte is read: a symlink is not followed, a FIFO does not hang. */
#include "image/image.h"
#include "image/image-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define VERIFY_CHUNK (8u << 20)

static const char *file_type(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
							    : "not a regular file";
}

/* Owned by us or root, writable by nobody else: what another user could
 * change is not restored. name is NULL for the directory itself. */
static int check_trusted(const struct image *img, const char *name, const struct stat *st)
{
	if ((st->st_uid == geteuid() || st->st_uid == 0) && !(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	return log_error_errno(EPERM, "%s%s%s is owned by uid %u with mode %04o: an image must belong to you "
			       "or root and be writable by no one else; refusing it", name ? "image file '" : "image directory '",
			       name ? name : img->dir, name ? "' in " : "'", (unsigned)st->st_uid,
			       (unsigned)(st->st_mode & 07777));
}

/* The open of every image file: never follows a link, never blocks on a
 * FIFO, and only a trusted regular file comes back. Logs every failure but
 * -ENOENT, which the callers word. */
static int open_checked(struct image *img, const char *name, struct stat *ret_st)
{
	_cleanup_close_ int fd = openat(img->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;

	if (fd < 0 && errno == ELOOP)
		return log_error_errno(EBADMSG, "image file '%s' in %s is a symbolic link; refusing it", name, img->dir);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return log_error_errno(errno, "cannot open image file '%s/%s': %m", img->dir, name);
	if (fstat(fd, &st) < 0)
		return log_error_errno(errno, "cannot stat image file '%s/%s': %m", img->dir, name);
	if (!S_ISREG(st.st_mode))
		return log_error_errno(EBADMSG, "image file '%s' in %s is %s; refusing it", name, img->dir,
				       file_type(st.st_mode));
	int r = check_trusted(img, name, &st);
	if (r < 0)
		return r;
	if (ret_st)
		*ret_st = st;
	return TAKE_FD(fd);
}

static int load_manifest(struct image *img)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;
	json_error_t err;

	int r = fd = open_checked(img, IMAGE_MANIFEST, NULL);
	if (r >= 0)
		r = read_fd_capped(fd, IMAGE_MAX_JSON, &buf, &len);
	if (r == -ENOENT)
		return log_error_errno(r, "no checkpoint image in '%s': manifest.json is missing", img->dir);
	if (fd < 0)
		return r; /* logged */
	if (r == -EFBIG)
		return log_error_errno(EBADMSG, "manifest.json in %s is larger than %u MiB",
				       img->dir, IMAGE_MAX_JSON >> 20);
	if (r < 0)
		return log_error_errno(r, "cannot read manifest.json in %s: %m", img->dir);
	img->manifest = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!img->manifest)
		return log_error_errno(EBADMSG, "manifest.json in %s is not valid JSON (line %d: %s)",
				       img->dir, err.line, err.text);
	if (!json_is_object(img->manifest))
		return log_error_errno(EBADMSG, "manifest.json in %s is not a JSON object", img->dir);
	return 0;
}

static int check_header(struct image *img)
{
	json_t *fmt = json_object_get(img->manifest, "format");
	json_t *ver = json_object_get(img->manifest, "version");

	if (!json_is_string(fmt) || !streq(json_string_value(fmt), IMAGE_FORMAT))
		return log_error_errno(EBADMSG, "manifest.json in %s is not a stasis image (format '%s')",
				       img->dir, json_is_string(fmt) ? json_string_value(fmt) : "none");
	if (!json_is_integer(ver))
		return log_error_errno(EBADMSG, "manifest.json in %s has no integer version", img->dir);
	if (json_integer_value(ver) < IMAGE_VERSION_MIN || json_integer_value(ver) > IMAGE_VERSION)
		return log_error_errno(EBADMSG, "image version %" JSON_INTEGER_FORMAT
				       " is not supported (this stasis reads %d to %d)",
				       json_integer_value(ver), IMAGE_VERSION_MIN, IMAGE_VERSION);
	return 0;
}

static int check_hex16(const char *s)
{
	uint64_t h;

	return s && strlen(s) == 16 ? hex_decode(s, &h, sizeof(h)) : -EINVAL;
}

/* One entry of "files": well-formed, plain name, new, on disk, right size. */
static int check_entry(struct image *img, size_t i, json_t *e)
{
	const char *name = NULL, *hash = NULL;
	int64_t size;
	struct stat st;

	if (json_get_str(e, "name", &name) < 0 || json_get_i64(e, "size", &size) < 0 || size < 0 ||
	    json_get_str(e, "xxh3", &hash) < 0 || check_hex16(hash) < 0)
		return log_error_errno(EBADMSG, "manifest.json in %s: file entry %zu is malformed "
				       "(needs name, size and a 16-digit xxh3)", img->dir, i);
	if (!image_name_valid(name))
		return log_error_errno(EBADMSG, "manifest.json in %s: file entry %zu has an invalid name "
				       "(not a plain file name)", img->dir, i);
	if (image_has(img, name))
		return log_error_errno(EBADMSG, "manifest.json in %s lists '%s' twice", img->dir, name);
	if (fstatat(img->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return log_error_errno(errno, "cannot stat image file '%s/%s': %m", img->dir, name);
		return log_error_errno(EBADMSG, "image file '%s' in %s is missing (expected %" PRId64 " bytes)",
				       name, img->dir, size);
	}
	if (!S_ISREG(st.st_mode))
		return log_error_errno(EBADMSG, "image file '%s' in %s is %s; refusing it", name, img->dir,
				       file_type(st.st_mode));
	int r = check_trusted(img, name, &st);
	if (r < 0)
		return r;
	if (st.st_size != size)
		return log_error_errno(EBADMSG, "image file '%s' in %s is %s (expected %" PRId64
				       " bytes, found %" PRId64 ")", name, img->dir,
				       st.st_size < size ? "truncated" : "too large", size, (int64_t)st.st_size);
	if (json_object_set(img->index, name, e) < 0)
		return log_error_errno(ENOMEM, "cannot read manifest.json in %s: %m", img->dir);
	return 0;
}

static int check_files(struct image *img)
{
	json_t *e;
	size_t i;

	img->files = json_incref(json_object_get(img->manifest, "files"));
	if (!json_is_array(img->files))
		return log_error_errno(EBADMSG, "manifest.json in %s has no file list", img->dir);
	json_array_foreach(img->files, i, e) {
		int r = check_entry(img, i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int image_open(const char *dir, struct image **ret)
{
	struct image *img = image_alloc(dir);
	if (!img)
		return log_error_errno(ENOMEM, "cannot open image '%s': %m", dir);
	img->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = img->dirfd < 0 ? -errno : 0;
	struct stat st;
	if (r == -ENOENT || r == -ENOTDIR)
		r = log_error_errno(ENOENT, "no checkpoint image at '%s': %m", dir);
	else if (r < 0)
		r = log_error_errno(r, "cannot open image directory '%s': %m", dir);
	else if (fstat(img->dirfd, &st) < 0)
		r = log_error_errno(errno, "cannot stat image directory '%s': %m", dir);
	else
		r = check_trusted(img, NULL, &st);
	if (r >= 0)
		r = load_manifest(img);
	if (r >= 0)
		r = check_header(img);
	if (r >= 0)
		r = check_files(img);
	if (r < 0) {
		image_free(img);
		return r;
	}
	*ret = img;
	return 0;
}

/* The manifest entry of a listed file, or -ENOENT (logged). */
static int lookup(struct image *img, const char *name, uint64_t *ret_size, uint64_t *ret_hash)
{
	json_t *e = json_object_get(img->index, name);
	int64_t size;
	const char *hash;
	uint64_t h;

	/* Entries were validated by image_open; the writer's own are well-formed. */
	if (!e || json_get_i64(e, "size", &size) < 0 || json_get_str(e, "xxh3", &hash) < 0 ||
	    parse_u64(hash, 16, &h) < 0)
		return log_error_errno(ENOENT, "image '%s' has no file '%s'", img->dir, name);
	*ret_size = (uint64_t)size;
	*ret_hash = h;
	return 0;
}

int image_open_file(struct image *img, const char *name, int *ret_fd, uint64_t *ret_size)
{
	uint64_t size, hash;
	int r = lookup(img, name, &size, &hash);
	if (r < 0)
		return r;
	struct stat st;
	int fd = open_checked(img, name, &st);
	if (fd == -ENOENT)
		return log_error_errno(EBADMSG, "image file '%s' in %s is missing", name, img->dir);
	if (fd < 0)
		return fd; /* logged */
	if ((uint64_t)st.st_size != size) {
		close(fd);
		return log_error_errno(EBADMSG, "image file '%s' in %s changed size while the image was read",
				       name, img->dir);
	}
	*ret_fd = fd;
	*ret_size = size;
	return 0;
}

int image_file_xxh3(struct image *img, const char *name, uint64_t *ret_hash)
{
	uint64_t size;
	return lookup(img, name, &size, ret_hash);
}

static int damaged(struct image *img, const char *name)
{
	return log_error_errno(EBADMSG, "image file '%s' in %s is damaged: checksum mismatch", name, img->dir);
}

int image_get(struct image *img, const char *name, size_t max, void **ret_buf, size_t *ret_len)
{
	uint64_t size, hash;
	_cleanup_close_ int fd = -1;
	int r = lookup(img, name, &size, &hash);
	if (r < 0)
		return r;
	if (size > max || size >= SIZE_MAX)
		return log_error_errno(EBADMSG, "image file '%s' in %s is too large (%" PRIu64
				       " bytes, limit %zu)", name, img->dir, size, max);
	r = image_open_file(img, name, &fd, &size);
	if (r < 0)
		return r;
	/* One byte more for a NUL, so JSON and text readers need no copy. */
	_cleanup_free_ char *buf = malloc((size_t)size + 1);
	if (!buf)
		return log_error_errno(ENOMEM, "cannot read image file '%s': %m", name);
	r = read_exact(fd, buf, (size_t)size);
	if (r == -EIO)
		return log_error_errno(EBADMSG, "image file '%s' in %s is truncated", name, img->dir);
	if (r < 0)
		return log_error_errno(r, "cannot read image file '%s/%s': %m", img->dir, name);
	if (XXH3_64bits(buf, (size_t)size) != hash)
		return damaged(img, name);
	buf[size] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = (size_t)size;
	return 0;
}

int image_get_json(struct image *img, const char *name, json_t **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	json_error_t err;

	int r = image_get(img, name, IMAGE_MAX_JSON, (void **)&buf, &len);
	if (r < 0)
		return r;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		return log_error_errno(EBADMSG, "image file '%s' in %s is not valid JSON (line %d: %s)",
				       name, img->dir, err.line, err.text);
	*ret = j;
	return 0;
}

/* Large reads: page data can be a GiB, and this is restore's hot path. */
static int hash_fd(int fd, XXH3_state_t *st, uint64_t *ret_len)
{
	_cleanup_free_ char *buf = malloc(VERIFY_CHUNK);
	uint64_t len = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, VERIFY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		XXH3_64bits_update(st, buf, (size_t)n);
		len += (uint64_t)n;
	}
	*ret_len = len;
	return 0;
}

int image_verify_file(struct image *img, const char *name)
{
	uint64_t size, hash, got_len = 0, got_hash;
	_cleanup_close_ int fd = -1;

	int r = lookup(img, name, &size, &hash);
	if (r < 0)
		return r;
	r = image_open_file(img, name, &fd, &size);
	if (r < 0)
		return r;
	XXH3_state_t *st = XXH3_createState();
	r = st && XXH3_64bits_reset(st) == XXH_OK ? hash_fd(fd, st, &got_len) : -ENOMEM;
	got_hash = r < 0 ? 0 : XXH3_64bits_digest(st);
	XXH3_freeState(st);
	if (r < 0)
		return log_error_errno(r, "cannot read image file '%s/%s': %m", img->dir, name);
	if (got_len != size)
		return log_error_errno(EBADMSG, "image file '%s' in %s is %s (expected %" PRIu64
				       " bytes, found %" PRIu64 ")", name, img->dir,
				       got_len < size ? "truncated" : "too large", size, got_len);
	if (got_hash != hash)
		return damaged(img, name);
	return 0;
}

struct image_check {
	struct image *img;
	char *name;
	uint64_t size, hash, seen;
	XXH3_state_t *st;
};

int image_check_open(struct image *img, const char *name, struct image_check **ret)
{
	struct image_check *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = lookup(img, name, &c->size, &c->hash);
	if (r >= 0 && (!(c->name = strdup(name)) || !(c->st = XXH3_createState()) || XXH3_64bits_reset(c->st) != XXH_OK))
		r = -ENOMEM;
	if (r < 0) {
		image_check_free(c);
		return r;
	}
	c->img = img;
	*ret = c;
	return 0;
}

void image_check_add(struct image_check *c, const void *buf, size_t len)
{
	XXH3_64bits_update(c->st, buf, len);
	c->seen += len;
}

int image_check_end(struct image_check *c)
{
	if (c->seen != c->size)
		return log_error_errno(EBADMSG, "image file '%s' in %s: %" PRIu64 " of its %" PRIu64 " bytes were read",
				       c->name, c->img->dir, c->seen, c->size);
	return XXH3_64bits_digest(c->st) == c->hash ? 0 : damaged(c->img, c->name);
}

void image_check_free(struct image_check *c)
{
	if (!c)
		return;
	XXH3_freeState(c->st);
	free(c->name);
	free(c);
}
