/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/shmem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/deleted.h"
#include "engine/fsroot.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Content file: records of (offset, length) followed by the bytes, one
 * per data extent; holes are not stored. */
/* F_SEAL_SEAL ... F_SEAL_EXEC */
#define SEALS_ALL 0x3f

struct extent {
	uint64_t off, len;
};

/* Keys in files_ctx's table of made things: apart from fd descriptions. */
static uint64_t obj_key(const struct shobj *o)
{
	return (1ULL << 63) | (o->dev << 40) | (o->ino & ((1ULL << 40) - 1));
}

int shobj_stat(int fd, struct shobj *ret)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > MAX_SHOBJ_SIZE)
		return -EFBIG;
	int seals = fcntl(fd, F_GET_SEALS);
	*ret = (struct shobj){ .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .size = (uint64_t)st.st_size,
			       .seals = seals > 0 ? (uint32_t)seals : 0, .mode = st.st_mode & 07777, .uid = st.st_uid,
			       .gid = st.st_gid };
	return 0;
}

int shobj_save(struct image *img, int fd, const struct shobj *o)
{
	char name[IMAGE_NAME_MAX];
	if (image_has(img, image_name_shmem(name, o->dev, o->ino)))
		return 0;
	struct image_stream *s;
	int r = image_stream_open(img, name, &s);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = malloc(1 << 20);
	if (!buf)
		r = -ENOMEM;
	for (off_t at = 0; r >= 0 && (uint64_t)at < o->size;) {
		off_t d = lseek(fd, at, SEEK_DATA);
		if (d < 0) {
			r = errno == ENXIO ? 0 : -errno; /* only a hole is left */
			break;
		}
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > o->size)
			h = (off_t)o->size;
		for (off_t p = d; r >= 0 && p < h;) {
			size_t n = (size_t)(h - p) < (1u << 20) ? (size_t)(h - p) : (1u << 20);
			struct extent e = { (uint64_t)p, n };
			r = pread_exact(fd, buf, n, p);
			if (r >= 0 && (r = image_stream_write(s, &e, sizeof(e))) >= 0)
				r = image_stream_write(s, buf, n);
			p += (off_t)n;
		}
		at = h;
	}
	if (r < 0) {
		image_stream_abort(s);
		return log_error_errno(r, "cannot save shared memory object %s: %m", name);
	}
	return image_stream_close(s);
}

void shobj_to_jb(struct json_builder *b, const struct shobj *o)
{
	struct json_builder x;
	jb_begin(&x);
	jb_u64(&x, "dev", o->dev);
	jb_u64(&x, "ino", o->ino);
	jb_u64(&x, "size", o->size);
	if (o->seals)
		jb_int(&x, "seals", (int)o->seals);
	if (o->mode)
		jb_int(&x, "mode", (int)o->mode);
	if (o->uid >= 0 && o->gid >= 0) {
		jb_i64(&x, "uid", o->uid);
		jb_i64(&x, "gid", o->gid);
	}
	jb_obj(b, "obj", &x);
}

int shobj_from_json(const json_t *j, struct shobj *o)
{
	json_t *x = json_object_get(j, "obj");
	if (!json_is_object(x) || json_get_u64(x, "dev", &o->dev) < 0 || json_get_u64(x, "ino", &o->ino) < 0 ||
	    json_get_u64(x, "size", &o->size) < 0 || o->size > MAX_SHOBJ_SIZE || o->dev >= (1ULL << 23))
		return -EBADMSG;
	int seals = 0;
	if (json_object_get(x, "seals") && (json_get_int(x, "seals", &seals) < 0 || seals < 0 || seals > SEALS_ALL))
		return -EBADMSG;
	o->seals = (uint32_t)seals;
	int mode = 0;
	if (json_object_get(x, "mode") && (json_get_int(x, "mode", &mode) < 0 || mode < 0 || mode > 07777))
		return -EBADMSG;
	o->mode = (uint32_t)mode;
	o->uid = o->gid = -1;
	if (json_object_get(x, "uid") && (json_get_i64(x, "uid", &o->uid) < 0 || json_get_i64(x, "gid", &o->gid) < 0 ||
					  o->uid < 0 || o->uid > UINT32_MAX - 1 || o->gid < 0 || o->gid > UINT32_MAX - 1))
		return -EBADMSG;
	return 0;
}

static int fill(struct image *img, int fd, const struct shobj *o)
{
	char name[IMAGE_NAME_MAX];
	image_name_shmem(name, o->dev, o->ino);
	if (ftruncate(fd, (off_t)o->size) < 0)
		return -errno;
	if (!image_has(img, name))
		return 0; /* all holes */
	_cleanup_close_ int in = -1;
	uint64_t len;
	int r = image_verify_file(img, name);
	if (r < 0 || (r = image_open_file(img, name, &in, &len)) < 0)
		return r;
	_cleanup_free_ char *buf = malloc(1 << 20);
	if (!buf)
		return -ENOMEM;
	for (uint64_t at = 0; at < len;) {
		struct extent e;
		if (len - at < sizeof(e) || (r = pread_exact(in, &e, sizeof(e), (off_t)at)) < 0)
			return r < 0 ? r : -EBADMSG;
		at += sizeof(e);
		if (e.len > (1u << 20) || e.len > len - at || e.off > o->size || e.len > o->size - e.off)
			return log_error_errno(-EBADMSG, "%s: bad extent at byte %llu", name, (unsigned long long)at);
		if ((r = pread_exact(in, buf, e.len, (off_t)at)) < 0 || (r = pwrite_all(fd, buf, e.len, (off_t)e.off)) < 0)
			return r;
		at += e.len;
	}
	return 0;
}

/* MAP_SHARED|MAP_ANONYMOUS memory is a shmem file named "/dev/zero": we
 * make one by mapping it ourselves and opening it through map_files. */
static int make_anon(uint64_t size)
{
	char path[96];
	size_t len = size ? size : 4096;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p, (unsigned long)p + len);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int e = errno;
	munmap(p, len);
	return fd < 0 ? -e : fd;
}

static int make(const char *fsroot, const char *path)
{
	if (streq(path, "/dev/zero (deleted)") || streq(path, "/dev/zero"))
		return -ENOENT; /* sized by the caller */
	if (startswith(path, "/memfd:")) {
		char name[256];
		size_t l = strlen(path + 7);
		if (l >= 10 && streq(path + 7 + l - 10, " (deleted)"))
			l -= 10;
		snprintf(name, sizeof(name), "%.*s", (int)(l < 249 ? l : 249), path + 7);
		int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		return fd < 0 ? -errno : fd;
	}
	size_t l = strlen(path);
	if (path[0] != '/' || l <= 10 || !streq(path + l - 10, " (deleted)"))
		return -EINVAL;
	return deleted_make(fsroot, path, S_IFREG);
}

/* Seals go on once the content is in (a memfd made here allows sealing;
 * one that did not comes back with F_SEAL_SEAL). */
static int seal(int fd, uint32_t seals)
{
	int cur = fcntl(fd, F_GET_SEALS);
	if (cur < 0)
		return seals ? -errno : 0;
	uint32_t add = seals & ~(uint32_t)cur;
	return add && fcntl(fd, F_ADD_SEALS, (int)add) < 0 ? -errno : 0;
}

int shobj_get(struct files_ctx *c, const char *path, const struct shobj *o)
{
	uint64_t key = obj_key(o);
	int fd = files_ctx_find(c, key);
	if (fd >= 0)
		return fd;
	fd = make(c->fsroot, path);
	if (fd == -ENOENT)
		fd = make_anon(o->size);
	if (fd < 0)
		return log_error_errno(fd, "cannot recreate shared memory object %s: %m", path);
	int r = fill(c->img, fd, o);
	if (r >= 0)
		r = seal(fd, o->seals);
	/* A deleted file keeps its owner and permission bits (owner first:
	 * fchown clears set-id bits). */
	bool file = !startswith(path, "/memfd:") && !startswith(path, "/dev/zero");
	if (r >= 0 && file && o->uid >= 0 && fchown(fd, (uid_t)o->uid, (gid_t)o->gid) < 0)
		r = -errno;
	if (r >= 0 && file && o->mode && fchmod(fd, o->mode) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return log_error_errno(r, "cannot fill or seal shared memory object %s: %m", path);
	}
	return (r = files_ctx_add(c, key, fd)) < 0 ? r : fd;
}

int shobj_reopen_ro(int fd)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int r = open(p, O_RDONLY | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

int shobj_readonly(struct files_ctx *c, const struct shobj *o)
{
	uint64_t key = obj_key(o);
	for (size_t i = 0; i < c->nmade; i++) {
		if (c->made[i].desc != key)
			continue;
		int fd = shobj_reopen_ro(c->made[i].fd);
		if (fd < 0)
			return fd;
		close(c->made[i].fd);
		c->made[i].fd = fd;
		return 0;
	}
	return -ENOENT;
}
