/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing a checkpoint image: files first, manifest.json last, so an
 * interrupted dump never looks like a valid image. Every error is logged
 * here, with the file name: callers only pass the code on. */
#include "image/image.h"
#include "image/image-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "image/pagesums.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Small writes are gathered here; large ones go straight to write(2). */
#define STREAM_BUF_SIZE (1u << 20)
#define STREAM_DIRECT_MIN (32u << 10)

struct image_stream {
	struct image *img;
	char *name;
	int fd;
	uint64_t offset;
	XXH3_state_t *hash;
	char *buf;
	size_t buf_len;
	struct block_hasher *blocks; /* image_stream_sum_blocks, or NULL */
	struct zstd_out *z;          /* image_stream_compress, or NULL */
	uint64_t stored;             /* bytes written to the file */
	bool reserved;               /* the file came from image_reserve: cut it at close */
};

/* Plain names only: a manifest must not reach outside its directory, and
 * control characters would garble the one-line error messages. */
bool image_name_valid(const char *name)
{
	size_t len = strlen(name);

	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return len > 0 && len <= IMAGE_MAX_NAME && !strchr(name, '/') &&
	       !streq(name, ".") && !streq(name, "..") && !streq(name, IMAGE_MANIFEST);
}

void image_hash_hex(uint64_t h, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, h);
}

struct image *image_alloc(const char *dir)
{
	struct image *img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	img->dirfd = -1;
	img->dir = strdup(dir);
	img->index = json_object();
	if (!img->dir || !img->index) {
		image_free(img);
		return NULL;
	}
	return img;
}

/* The reserved files no stream took: not part of the image. */
static void drop_reserved(struct image *img)
{
	for (size_t i = 0; i < img->nreserved; i++) {
		close(img->reserved[i].fd);
		if (img->dirfd >= 0)
			unlinkat(img->dirfd, img->reserved[i].name, 0);
		free(img->reserved[i].name);
	}
	free(img->reserved);
	img->reserved = NULL;
	img->nreserved = 0;
}

void image_free(struct image *img)
{
	if (!img)
		return;
	drop_reserved(img);
	if (img->dirfd >= 0)
		close(img->dirfd);
	json_decref(img->manifest);
	json_decref(img->files);
	json_decref(img->index);
	free(img->dir);
	free(img);
}

void image_rollback(struct image *img)
{
	json_t *f;
	size_t i;

	if (!img || !img->writing || img->dirfd < 0)
		return;
	drop_reserved(img);
	json_array_foreach(img->files, i, f)
		unlinkat(img->dirfd, json_string_value(json_object_get(f, "name")), 0);
	/* A dump rolled back after its commit; image_create refused a
	 * directory with a manifest, so one here is ours. */
	unlinkat(img->dirfd, IMAGE_MANIFEST, 0);
	unlinkat(img->dirfd, IMAGE_MANIFEST ".tmp", 0);
	json_array_clear(img->files);
	json_object_clear(img->index);
}

void image_discard(struct image *img)
{
	if (!img)
		return;
	image_rollback(img);
	if (img->writing && img->dirfd >= 0 && img->created)
		rmdir(img->dir); /* only if we left it empty */
	image_free(img);
}

json_t *image_manifest(const struct image *img)
{
	return img->manifest;
}

const char *image_dir(const struct image *img)
{
	return img->dir;
}

bool image_has(const struct image *img, const char *name)
{
	return json_object_get(img->index, name) != NULL;
}

static int create_dir(const char *dir, int *ret_fd, bool *ret_created)
{
	struct stat st;

	bool created = mkdir(dir, 0700) == 0;
	if (!created && errno != EEXIST)
		return log_error_errno(errno, "cannot create image directory '%s': %m", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(errno, "cannot open image directory '%s': %m", dir);
	if (fstatat(fd, IMAGE_MANIFEST, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
		close(fd);
		return log_error_errno(EEXIST, "'%s' already holds a checkpoint image (manifest.json); "
					       "choose an empty directory", dir);
	}
	/* An existing directory too: the image holds a process's memory, and
	 * a restore refuses a directory others may write. */
	if (!created && fchmod(fd, 0700) < 0) {
		int e = errno;
		close(fd);
		return log_error_errno(e, "cannot set the mode of image directory '%s' to 0700: %m", dir);
	}
	*ret_fd = fd;
	*ret_created = created;
	return 0;
}

int image_create(const char *dir, struct image **ret)
{
	struct image *img = image_alloc(dir);
	if (!img)
		return log_error_errno(ENOMEM, "cannot create image in '%s': %m", dir);
	img->writing = true;
	img->nosync = getenv("STASIS_NOSYNC") && *getenv("STASIS_NOSYNC") && !streq(getenv("STASIS_NOSYNC"), "0");
	img->files = json_array();
	int r = img->files ? create_dir(dir, &img->dirfd, &img->created) : -ENOMEM;
	if (r < 0) {
		image_free(img);
		return r == -ENOMEM ? log_error_errno(r, "cannot create image in '%s': %m", dir) : r;
	}
	*ret = img;
	return 0;
}

/* A name a writer may use: plain, and not yet in the image. */
static int check_new_name(struct image *img, const char *name)
{
	if (!img->writing)
		return log_error_errno(EINVAL, "image '%s' is open for reading, cannot add '%s'",
				       img->dir, name);
	if (!image_name_valid(name))
		return log_error_errno(EINVAL, "invalid image file name '%s'", name);
	if (image_has(img, name))
		return log_error_errno(EEXIST, "image file '%s' written twice", name);
	return 0;
}

static int record_file(struct image *img, const char *name, uint64_t size, uint64_t hash)
{
	char hex[17];

	image_hash_hex(hash, hex);
	json_t *e = json_pack("{s:s, s:I, s:s}", "name", name, "size", (json_int_t)size, "xxh3", hex);
	if (!e || json_array_append_new(img->files, e) < 0 || json_object_set(img->index, name, e) < 0)
		return log_error_errno(ENOMEM, "cannot record image file '%s': %m", name);
	return 0;
}

void image_set_journal(struct image *img, struct image_journal *j)
{
	img->journal = j;
}

/* Before the file exists: a guardian must know every name it may find. */
static int journal_add(struct image *img, const char *name)
{
	struct image_journal *j = img->journal;
	size_t l = strlen(name) + 1;
	if (!j)
		return 0;
	if (l > sizeof(j->names) - j->len)
		return log_error_errno(ENOSPC, "image '%s': too many files for the dump's journal", img->dir);
	memcpy(j->names + j->len, name, l);
	__atomic_store_n(&j->len, j->len + l, __ATOMIC_RELEASE); /* the name first, then its length */
	return 0;
}

void image_journal_undo(struct image *img, const struct image_journal *j)
{
	uint64_t len = __atomic_load_n(&j->len, __ATOMIC_ACQUIRE);
	for (uint64_t at = 0; at < len && at < sizeof(j->names);) {
		const char *name = j->names + at;
		size_t l = strnlen(name, sizeof(j->names) - at);
		if (image_name_valid(name) || streq(name, IMAGE_MANIFEST ".tmp"))
			unlinkat(img->dirfd, name, 0);
		at += l + 1;
	}
	unlinkat(img->dirfd, IMAGE_MANIFEST, 0);
	if (img->created)
		rmdir(img->dir); /* only if we left it empty */
}

static int sync_fd(const struct image *img, int fd)
{
	return img->nosync || fsync(fd) == 0 ? 0 : -errno;
}

/* Written, flushed and closed; the name journaled before it exists. */
static int put_file(struct image *img, const char *name, const void *buf, size_t len)
{
	int r = journal_add(img, name);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = openat(img->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
					0600);
	if (fd < 0)
		return log_error_errno(errno, "cannot create image file '%s/%s': %m", img->dir, name);
	if ((r = write_all(fd, buf, len)) < 0 || (r = sync_fd(img, fd)) < 0 || (close(TAKE_FD(fd)) < 0 && (r = -errno)))
		return log_error_errno(r, "cannot write image file '%s/%s': %m", img->dir, name);
	return 0;
}

int image_put(struct image *img, const char *name, const void *buf, size_t len)
{
	int r = check_new_name(img, name);
	if (r < 0 || (r = put_file(img, name, buf, len)) < 0)
		return r;
	return record_file(img, name, len, XXH3_64bits(buf, len));
}

int image_put_json(struct image *img, const char *name, const json_t *j)
{
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return log_error_errno(ENOMEM, "cannot encode image file '%s': %m", name);
	return image_put(img, name, s, strlen(s));
}

static ssize_t reserved_index(const struct image *img, const char *name)
{
	for (size_t i = 0; i < img->nreserved; i++)
		if (streq(img->reserved[i].name, name))
			return (ssize_t)i;
	return -1;
}

static int take_reserved(struct image *img, const char *name)
{
	ssize_t i = reserved_index(img, name);
	if (i < 0)
		return -1;
	int fd = img->reserved[i].fd;
	free(img->reserved[i].name);
	img->reserved[i] = img->reserved[--img->nreserved];
	if (lseek(fd, 0, SEEK_SET) == 0)
		return fd;
	close(fd);
	return -1; /* opened again, truncated */
}

int image_reserve(struct image *img, const char *name, uint64_t len)
{
	static const uint8_t zeros[64 << 10];
	int r = check_new_name(img, name);
	if (r < 0 || reserved_index(img, name) >= 0)
		return r < 0 ? r : -EEXIST;
	struct image_reserved *v = realloc(img->reserved, (img->nreserved + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	img->reserved = v;
	char *copy = strdup(name);
	if (!copy || (r = journal_add(img, name)) < 0) {
		free(copy);
		return r < 0 ? r : -ENOMEM;
	}
	int fd = openat(img->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	r = fd < 0 ? -errno : 0;
	/* Written, not fallocate'd: that allocates without touching. */
	for (uint64_t off = 0; r >= 0 && off < len;) {
		size_t n = len - off < sizeof(zeros) ? (size_t)(len - off) : sizeof(zeros);
		ssize_t w = write(fd, zeros, n);
		if (w <= 0)
			r = w < 0 ? -errno : -EIO;
		else
			off += (uint64_t)w;
	}
	if (r < 0) {
		if (fd >= 0) {
			close(fd);
			unlinkat(img->dirfd, name, 0);
		}
		free(copy);
		return r;
	}
	img->reserved[img->nreserved++] = (struct image_reserved){ copy, fd };
	return 0;
}

int image_stream_open(struct image *img, const char *name, struct image_stream **ret)
{
	int r = check_new_name(img, name);
	if (r < 0)
		return r;
	struct image_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return log_error_errno(ENOMEM, "cannot open image file '%s': %m", name);
	s->img = img;
	s->fd = -1;
	s->name = strdup(name);
	s->hash = XXH3_createState();
	s->buf = malloc(STREAM_BUF_SIZE);
	if (!s->name || !s->hash || !s->buf || XXH3_64bits_reset(s->hash) != XXH_OK) {
		image_stream_abort(s);
		return log_error_errno(ENOMEM, "cannot open image file '%s': %m", name);
	}
	r = reserved_index(img, name) < 0 ? journal_add(img, name) : 0; /* reserved: in it already */
	if (r < 0) {
		image_stream_abort(s);
		return r;
	}
	s->fd = take_reserved(img, name);
	s->reserved = s->fd >= 0;
	if (s->fd < 0)
		s->fd = openat(img->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (s->fd < 0) {
		r = log_error_errno(errno, "cannot create image file '%s/%s': %m", img->dir, name);
		image_stream_abort(s);
		return r;
	}
	*ret = s;
	return 0;
}

static int stream_flush(struct image_stream *s)
{
	int r = write_all(s->fd, s->buf, s->buf_len);
	if (r < 0)
		return log_error_errno(r, "cannot write image file '%s/%s': %m", s->img->dir, s->name);
	s->buf_len = 0;
	return 0;
}

int image_stream_write(struct image_stream *s, const void *buf, size_t len)
{
	int r = image_stream_hash(s, buf, len);
	return r < 0 ? r : image_stream_write_hashed(s, buf, len);
}

int image_stream_hash(struct image_stream *s, const void *buf, size_t len)
{
	if (s->z) /* the checksum is of the compressed bytes, taken as they go out */
		return 0;
	if (XXH3_64bits_update(s->hash, buf, len) != XXH_OK)
		return log_error_errno(EINVAL, "cannot checksum image file '%s'", s->name);
	return 0;
}

/* Bytes as they go to the file. */
static int stream_put(struct image_stream *s, const void *buf, size_t len)
{
	int r;

	s->stored += len;
	/* Big pieces (page runs) skip the buffer: no copy, one syscall; so do
	 * smaller ones with nothing buffered before them (a small process's
	 * pages: no faults on buffer pages, ~14 us each here). */
	bool direct = len >= STREAM_BUF_SIZE / 2 || (!s->buf_len && len >= STREAM_DIRECT_MIN);
	if (direct || len > STREAM_BUF_SIZE - s->buf_len) {
		r = stream_flush(s);
		if (r < 0)
			return r;
	}
	if (direct) {
		r = write_all(s->fd, buf, len);
		if (r < 0)
			return log_error_errno(r, "cannot write image file '%s/%s': %m", s->img->dir, s->name);
		return 0;
	}
	memcpy(s->buf + s->buf_len, buf, len);
	s->buf_len += len;
	return 0;
}

static int compressed_sink(void *arg, const void *buf, size_t len)
{
	struct image_stream *s = arg;
	if (XXH3_64bits_update(s->hash, buf, len) != XXH_OK)
		return log_error_errno(EINVAL, "cannot checksum image file '%s'", s->name);
	return stream_put(s, buf, len);
}

static int compress_more(struct image_stream *s, const void *buf, size_t len, bool end)
{
	int r = zstd_out_write(s->z, buf, len, end, compressed_sink, s);
	if (r == -EIO)
		return log_error_errno(r, "cannot compress image file '%s'", s->name);
	return r;
}

int image_stream_write_hashed(struct image_stream *s, const void *buf, size_t len)
{
	int r;

	if (s->blocks && (r = block_hasher_update(s->blocks, buf, len)) < 0)
		return log_error_errno(r, "cannot checksum image file '%s': %m", s->name);
	s->offset += len;
	return s->z ? compress_more(s, buf, len, false) : stream_put(s, buf, len);
}

int image_stream_compress(struct image_stream *s, int level)
{
	int r = zstd_out_new(level, &s->z);
	return r < 0 ? log_error_errno(r, "cannot compress image file '%s': %m", s->name) : 0;
}

uint64_t image_stream_stored(const struct image_stream *s)
{
	return s->stored;
}

/* The manifest entry of a compressed file says so (Version 4 additions). */
static int record_compressed(struct image_stream *s)
{
	json_t *e = json_object_get(s->img->index, s->name);
	if (!e || json_object_set_new(e, "compression", json_string("zstd")) < 0 ||
	    json_object_set_new(e, "raw_size", json_integer((json_int_t)s->offset)) < 0)
		return log_error_errno(ENOMEM, "cannot record image file '%s': %m", s->name);
	return 0;
}

static int put_block_sums(struct image_stream *s)
{
	_cleanup_free_ void *buf = NULL;
	size_t len;
	int r = block_hasher_finish(s->blocks, s->offset, &buf, &len);
	if (r < 0)
		return log_error_errno(r, "cannot checksum image file '%s': %m", s->name);
	return image_put(s->img, block_hasher_name(s->blocks), buf, len);
}

int image_stream_sum_blocks(struct image_stream *s, const char *sums_name)
{
	int r = check_new_name(s->img, sums_name);
	if (r < 0)
		return r;
	r = block_hasher_new(sums_name, &s->blocks);
	return r < 0 ? log_error_errno(r, "cannot open image file '%s': %m", sums_name) : 0;
}

uint64_t image_stream_offset(const struct image_stream *s)
{
	return s->offset;
}

int image_stream_close(struct image_stream *s)
{
	int r = s->z ? compress_more(s, NULL, 0, true) : 0;
	if (r >= 0)
		r = stream_flush(s);
	if (r >= 0 && s->reserved && ftruncate(s->fd, (off_t)s->stored) < 0)
		r = log_error_errno(errno, "cannot write image file '%s/%s': %m", s->img->dir, s->name);
	if (r >= 0 && (r = sync_fd(s->img, s->fd)) < 0)
		log_error_errno(r, "cannot flush image file '%s/%s' to disk: %m", s->img->dir, s->name);
	if (r >= 0 && close(TAKE_FD(s->fd)) < 0)
		r = log_error_errno(errno, "cannot write image file '%s/%s': %m", s->img->dir, s->name);
	if (r >= 0)
		r = record_file(s->img, s->name, s->stored, XXH3_64bits_digest(s->hash));
	if (r >= 0 && s->z)
		r = record_compressed(s);
	if (r >= 0 && s->blocks)
		r = put_block_sums(s);
	image_stream_abort(s);
	return r;
}

void image_stream_abort(struct image_stream *s)
{
	if (!s)
		return;
	if (s->fd >= 0) {
		/* Not recorded: nobody will read it, remove it. */
		close(s->fd);
		unlinkat(s->img->dirfd, s->name, 0);
	}
	XXH3_freeState(s->hash);
	block_hasher_free(s->blocks);
	zstd_out_free(s->z);
	free(s->buf);
	free(s->name);
	free(s);
}

/* The directory's entries (the files, the rename), and the directory's
 * own entry in its parent when we made it. */
static int sync_dirs(struct image *img)
{
	int r = sync_fd(img, img->dirfd);
	if (r >= 0 && img->created) {
		_cleanup_close_ int p = openat(img->dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = p < 0 ? -errno : sync_fd(img, p);
	}
	if (r < 0)
		return log_error_errno(r, "cannot flush image directory '%s' to disk: %m", img->dir);
	return 0;
}

static int manifest_header(json_t *m)
{
	struct utsname u;
	struct tm tm;
	char created[32];
	time_t now = time(NULL);

	if (uname(&u) < 0)
		return -errno;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json_object_set_new(m, "format", json_string(IMAGE_FORMAT)) < 0 ||
	    json_object_set_new(m, "version", json_integer(IMAGE_VERSION)) < 0 ||
	    json_object_set_new(m, "stasis_version", json_string(STASIS_VERSION)) < 0 ||
	    json_object_set_new(m, "created", json_string(created)) < 0 ||
	    json_object_set_new(m, "kernel", json_string(u.release)) < 0)
		return -ENOMEM;
	return 0;
}

/* Written to a temporary name and renamed, so manifest.json is either
 * complete or absent. */
static int write_manifest(struct image *img, const json_t *m)
{
	static const char tmp[] = IMAGE_MANIFEST ".tmp";
	_cleanup_free_ char *s = json_dumps(m, JSON_INDENT(2));
	if (!s)
		return log_error_errno(ENOMEM, "cannot encode manifest.json: %m");
	int r = put_file(img, tmp, s, strlen(s));
	if (r < 0)
		return r;
	if (renameat(img->dirfd, tmp, img->dirfd, IMAGE_MANIFEST) < 0)
		return log_error_errno(errno, "cannot write '%s/%s': %m", img->dir, IMAGE_MANIFEST);
	return sync_dirs(img);
}

int image_commit(struct image *img, const json_t *body)
{
	if (!img->writing)
		return log_error_errno(EINVAL, "image '%s' is open for reading, cannot commit", img->dir);
	_cleanup_json_ json_t *m = body ? json_deep_copy(body) : json_object();
	if (!m || !json_is_object(m))
		return log_error_errno(EINVAL, "manifest body for '%s' is not a JSON object", img->dir);
	drop_reserved(img); /* before the manifest: no file outside its list */
	int r = manifest_header(m);
	if (r >= 0 && json_object_set(m, "files", img->files) < 0)
		r = -ENOMEM;
	if (r < 0)
		return log_error_errno(r, "cannot build manifest.json for '%s': %m", img->dir);
	return write_manifest(img, m);
}
