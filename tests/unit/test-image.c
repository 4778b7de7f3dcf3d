/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image round trip and the reader's refusals. Each test gets a fresh
 * temporary directory holding one committed image. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>

#include "image/image.h"
#include "image/pagesums.h"
#include "image/xxh3-fast.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define BIG_SIZE (3u << 20) /* several stream buffers */

struct fixture {
	char tmp[64];
	char dir[96];
	int dirfd;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static unsigned char big_byte(size_t i)
{
	return (unsigned char)(i * 131 + (i >> 12));
}

/* Writes the image every test starts from: small, JSON and streamed files. */
static void write_image(const char *dir)
{
	struct image *img;
	struct image_stream *s;
	_cleanup_free_ unsigned char *big = malloc(BIG_SIZE);
	_cleanup_json_ json_t *rec = json_pack("{s:i, s:s}", "pid", 42, "comm", "sleep");
	_cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "type", "process", "format", "ignored");

	assert_non_null(big);
	for (size_t i = 0; i < BIG_SIZE; i++)
		big[i] = big_byte(i);
	assert_int_equal(image_create(dir, &img), 0);
	assert_int_equal(image_put(img, "raw.img", "hello", 5), 0);
	assert_int_equal(image_put(img, "empty.img", "", 0), 0);
	assert_int_equal(image_put_json(img, "core-42.json", rec), 0);
	assert_int_equal(image_stream_open(img, "pages-42.img", &s), 0);
	/* Mixed sizes: buffered small writes and direct large ones. */
	assert_int_equal(image_stream_write(s, big, 100), 0);
	assert_int_equal(image_stream_write(s, big + 100, 4096), 0);
	assert_int_equal(image_stream_write(s, big + 4196, (2u << 20) - 4196), 0);
	assert_int_equal(image_stream_write(s, big + (2u << 20), BIG_SIZE - (2u << 20)), 0);
	assert_int_equal(image_stream_offset(s), BIG_SIZE);
	assert_int_equal(image_stream_close(s), 0);
	assert_int_equal(image_commit(img, body), 0);
	image_free(img);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/stasis-test-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/img", f->tmp);
	write_image(f->dir);
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->dirfd);
	nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct image *img;
	void *buf;
	size_t len;
	json_t *j;
	struct stat st;

	assert_int_equal(image_open(f->dir, &img), 0);
	json_t *m = image_manifest(img);
	assert_string_equal(json_string_value(json_object_get(m, "format")), "stasis-image");
	assert_string_equal(json_string_value(json_object_get(m, "type")), "process");
	assert_int_equal(json_integer_value(json_object_get(m, "version")), IMAGE_VERSION);
	assert_non_null(json_object_get(m, "created"));
	assert_non_null(json_object_get(m, "kernel"));
	assert_int_equal(json_array_size(json_object_get(m, "files")), 4);
	assert_true(image_has(img, "raw.img"));
	assert_false(image_has(img, "manifest.json"));
	assert_string_equal(image_dir(img), f->dir);

	assert_int_equal(image_get(img, "raw.img", 100, &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 6); /* NUL-terminated */
	free(buf);
	assert_int_equal(image_get(img, "empty.img", 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(image_get(img, "raw.img", 4, &buf, &len), -EBADMSG); /* over max */
	assert_int_equal(image_get(img, "nope.img", 100, &buf, &len), -ENOENT);

	assert_int_equal(image_get_json(img, "core-42.json", &j), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 42);
	json_decref(j);

	assert_int_equal(image_verify_file(img, "pages-42.img"), 0);
	assert_int_equal(image_get(img, "pages-42.img", BIG_SIZE, &buf, &len), 0);
	assert_int_equal(len, BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i += 4093)
		assert_int_equal(((unsigned char *)buf)[i], big_byte(i));
	free(buf);
	image_free(img);

	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(fstatat(f->dirfd, "pages-42.img", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fstatat(f->dirfd, "manifest.json", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_create_refuses_existing(void **state)
{
	struct fixture *f = *state;
	struct image *img = NULL;

	assert_int_equal(image_create(f->dir, &img), -EEXIST);
	assert_null(img);
}

static void test_writer_names(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	struct image *img;

	snprintf(dir, sizeof(dir), "%s/w", f->tmp);
	assert_int_equal(image_create(dir, &img), 0);
	assert_int_equal(image_put(img, "../x", "a", 1), -EINVAL);
	assert_int_equal(image_put(img, "manifest.json", "a", 1), -EINVAL);
	assert_int_equal(image_put(img, "", "a", 1), -EINVAL);
	assert_int_equal(image_put(img, "a", "a", 1), 0);
	assert_int_equal(image_put(img, "a", "a", 1), -EEXIST);
	image_free(img); /* uncommitted: no manifest, not an image */
	assert_int_equal(image_open(dir, &img), -ENOENT);
}

static void open_fails(struct fixture *f, int err)
{
	struct image *img = NULL;

	assert_int_equal(image_open(f->dir, &img), err);
	assert_null(img);
}

/* Opens the image, then reads name expecting err from image_get and
 * image_verify_file. */
static void get_fails(struct fixture *f, const char *name, int err)
{
	struct image *img;
	void *buf = NULL;
	size_t len;

	assert_int_equal(image_open(f->dir, &img), 0);
	assert_int_equal(image_get(img, name, BIG_SIZE, &buf, &len), err);
	free(buf);
	assert_int_equal(image_verify_file(img, name), err);
	image_free(img);
}

static void test_flipped_bit(void **state)
{
	struct fixture *f = *state;
	unsigned char c;
	int fd = openat(f->dirfd, "pages-42.img", O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, 12345), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, 12345), 1);
	close(fd);
	get_fails(f, "pages-42.img", -EBADMSG);
	get_fails(f, "raw.img", 0); /* the others are still fine */
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	int fd = openat(f->dirfd, "raw.img", O_RDWR | O_CLOEXEC);

	assert_int_equal(ftruncate(fd, 4), 0);
	close(fd);
	open_fails(f, -EBADMSG);
	assert_int_equal(write_file_at(f->dirfd, "raw.img", "hello!", 6), 0);
	open_fails(f, -EBADMSG);
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(unlinkat(f->dirfd, "core-42.json", 0), 0);
	open_fails(f, -EBADMSG);
}

static void test_missing_manifest(void **state)
{
	struct fixture *f = *state;
	char dir[128];

	assert_int_equal(unlinkat(f->dirfd, "manifest.json", 0), 0);
	open_fails(f, -ENOENT);
	snprintf(dir, sizeof(dir), "%s/nonexistent", f->tmp);
	struct image *img;
	assert_int_equal(image_open(dir, &img), -ENOENT);
}

/* Replaces manifest.json by the given text. */
static void set_manifest(struct fixture *f, const char *text)
{
	assert_int_equal(write_file_at(f->dirfd, "manifest.json", text, strlen(text)), 0);
}

/* manifest.json parsed, for a test to edit and store_manifest back. */
static json_t *load_manifest(struct fixture *f)
{
	_cleanup_free_ char *buf = NULL;
	assert_int_equal(read_file_at(f->dirfd, "manifest.json", 1 << 20, &buf, NULL), 0);
	json_t *m = json_loads(buf, 0, NULL);
	assert_non_null(m);
	return m;
}

static void store_manifest(struct fixture *f, json_t *m)
{
	_cleanup_free_ char *s = json_dumps(m, 0);
	set_manifest(f, s);
	json_decref(m);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;

	set_manifest(f, "this is not json");
	open_fails(f, -EBADMSG);
	set_manifest(f, "[1, 2]");
	open_fails(f, -EBADMSG);
	set_manifest(f, "");
	open_fails(f, -EBADMSG);
	set_manifest(f, "{\"format\":\"stasis-image\",\"version\":2,\"format\":\"x\",\"files\":[]}");
	open_fails(f, -EBADMSG); /* duplicate key */
	set_manifest(f, "{\"format\":\"stasis-image\",\"version\":3,\"files\":[]}");
	struct image *img;
	assert_int_equal(image_open(f->dir, &img), 0); /* minimal but valid */
	image_free(img);
}

static void test_foreign_and_version(void **state)
{
	struct fixture *f = *state;
	json_t *m = load_manifest(f);

	json_object_set_new(m, "format", json_string("criu"));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);
	json_object_set_new(m, "format", json_string("stasis-image"));
	json_object_set_new(m, "version", json_integer(IMAGE_VERSION + 1));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);
	json_object_set_new(m, "version", json_integer(IMAGE_VERSION_MIN - 1));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);
	json_object_set_new(m, "version", json_integer(1)); /* before process trees */
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);
	json_object_set_new(m, "version", json_string("2"));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);
	json_object_del(m, "format");
	json_object_set_new(m, "version", json_integer(IMAGE_VERSION));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);
}

/* Sets field key of the entry for raw.img, expects image_open to fail,
 * then puts the good manifest back. */
static void entry_fails(struct fixture *f, const char *key, json_t *value)
{
	json_t *good = load_manifest(f), *m = json_deep_copy(good);
	json_t *files = json_object_get(m, "files"), *e;
	size_t i, hits = 0;

	json_array_foreach(files, i, e)
		if (streq(json_string_value(json_object_get(e, "name")), "raw.img")) {
			json_object_set_new(e, key, value);
			hits++;
		}
	assert_int_equal(hits, 1);
	store_manifest(f, m);
	open_fails(f, -EBADMSG);
	store_manifest(f, good);
}

static void test_bad_entries(void **state)
{
	struct fixture *f = *state;
	char longname[300];

	memset(longname, 'a', 256);
	longname[256] = '\0';
	assert_int_equal(symlinkat("raw.img", f->dirfd, "link.img"), 0);
	entry_fails(f, "name", json_string("../x"));
	entry_fails(f, "name", json_string("a/b"));
	entry_fails(f, "name", json_string(".."));
	entry_fails(f, "name", json_string("."));
	entry_fails(f, "name", json_string(""));
	entry_fails(f, "name", json_string(longname));
	entry_fails(f, "name", json_string("manifest.json"));
	entry_fails(f, "name", json_string("a\nb"));
	entry_fails(f, "name", json_string("link.img"));  /* symlink */
	entry_fails(f, "name", json_integer(3));
	entry_fails(f, "size", json_string("5"));
	entry_fails(f, "size", json_real(5.0));
	entry_fails(f, "size", json_integer(-1));
	entry_fails(f, "size", json_integer(6));
	entry_fails(f, "xxh3", json_string("1234"));
	entry_fails(f, "xxh3", json_string("zzzzzzzzzzzzzzzz"));
	entry_fails(f, "xxh3", json_null());
}

static void test_bad_file_list(void **state)
{
	struct fixture *f = *state;
	json_t *m = load_manifest(f);
	json_t *files = json_object_get(m, "files");

	/* The same file listed twice. */
	json_array_append(files, json_array_get(files, 0));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);

	m = load_manifest(f);

	json_object_set_new(m, "files", json_object());
	store_manifest(f, m);
	open_fails(f, -EBADMSG);
	m = load_manifest(f);
	json_object_set_new(m, "files", json_pack("[i]", 1));
	store_manifest(f, m);
	open_fails(f, -EBADMSG);
}

static void test_checksum_in_manifest(void **state)
{
	struct fixture *f = *state;

	/* A well-formed but wrong checksum: open succeeds, get refuses. */
	json_t *m = load_manifest(f);
	json_t *e = json_array_get(json_object_get(m, "files"), 0);
	json_object_set_new(e, "xxh3", json_string("0123456789abcdef"));
	const char *name = json_string_value(json_object_get(e, "name"));
	char saved[64];
	snprintf(saved, sizeof(saved), "%s", name);
	store_manifest(f, m);
	get_fails(f, saved, -EBADMSG);
}

static void test_bad_json_record(void **state)
{
	struct fixture *f = *state;
	struct image *img;
	json_t *j;

	assert_int_equal(image_open(f->dir, &img), 0);
	assert_int_equal(image_get_json(img, "raw.img", &j), -EBADMSG);
	image_free(img);
}

/* Sums in 64 KiB blocks: a range is checked block by block, the short
 * last block included, and a flipped byte names its block. */
static void test_pagesums_blocks(void **state)
{
	(void)state;
	const size_t size = (3u << 16) + 4096;
	uint8_t *data = malloc(size);
	struct block_hasher *h;
	struct pagesums ps;
	void *enc;
	size_t len;
	uint64_t bad = 0;
	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(block_hasher_new("pagesums-1.img", &h), 0);
	assert_int_equal(block_hasher_update(h, data, size), 0);
	assert_int_equal(block_hasher_finish(h, size, &enc, &len), 0);
	block_hasher_free(h);
	assert_int_equal(pagesums_decode(enc, len, size, &ps), 0);
	assert_int_equal(ps.shift, PAGESUMS_SHIFT);
	assert_int_equal(ps.n, 4);
	assert_int_equal(pagesums_check(&ps, 0, data, size, &bad), 0);
	assert_int_equal(pagesums_check(&ps, 3u << 16, data + (3u << 16), 4096, &bad), 0);
	assert_int_equal(pagesums_check(&ps, 4096, data + 4096, 1u << 16, &bad), -EINVAL);
	assert_int_equal(pagesums_decode(enc, len, size + 4096, &ps), -EBADMSG);
	/* The header alone (a lazy restore reads the sums it needs itself). */
	struct pagesums hp;
	uint64_t two[2];
	assert_int_equal(pagesums_header(enc, len, size, &hp), 0);
	assert_int_equal(hp.n, 4);
	assert_int_equal(hp.shift, PAGESUMS_SHIFT);
	assert_null(hp.sums);
	assert_int_equal(pagesums_header(enc, len - 8, size, &hp), -EBADMSG);
	assert_int_equal(pagesums_header(enc, PAGESUMS_HEADER - 1, size, &hp), -EBADMSG);
	pagesums_entries((uint8_t *)enc + PAGESUMS_HEADER + 16, 2, two);
	assert_memory_equal(two, ps.sums + 2, sizeof(two));
	data[(2u << 16) + 5] ^= 1;
	assert_int_equal(pagesums_check(&ps, 1u << 16, data + (1u << 16), 2u << 16, &bad), -EBADMSG);
	assert_int_equal(bad, 2);
	free(ps.sums);
	free(enc);
	free(data);
}

/* The AVX2 copy of XXH3 gives the library's values: every length up to
 * a few pages (each of XXH3's size classes), unaligned, and a block. */
static void test_xxh3_fast(void **state)
{
	(void)state;
	const size_t size = (1u << 16) + 64;
	uint8_t *data = malloc(size);
	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 9));
	for (size_t len = 0; len <= 3 * 4096; len++)
		assert_true(xxh3_fast(data + 3, len) == XXH3_64bits(data + 3, len));
	assert_true(xxh3_fast(data, 1u << 16) == XXH3_64bits(data, 1u << 16));
	free(data);
}

/* A reserved file is taken by its stream and cut to what was written;
 * one no stream took is gone at the commit, as at a rollback. */
static void test_reserve(void **state)
{
	struct fixture *f = *state;
	char dir[128], path[160];
	struct image *img;
	struct image_stream *s;
	struct stat st;
	void *buf;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/reserved", f->tmp);
	assert_int_equal(image_create(dir, &img), 0);
	assert_int_equal(image_reserve(img, "pages-1.img", 1u << 20), 0);
	assert_int_equal(image_reserve(img, "pages-2.img", 300000), 0);
	assert_int_equal(image_reserve(img, "pages-1.img", 10), -EEXIST);
	assert_int_equal(image_reserve(img, "../x", 10), -EINVAL);
	snprintf(path, sizeof(path), "%s/pages-2.img", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 300000);
	assert_int_equal(image_stream_open(img, "pages-1.img", &s), 0);
	assert_int_equal(image_stream_write(s, "abcdef", 6), 0);
	assert_int_equal(image_stream_close(s), 0);
	assert_int_equal(image_commit(img, NULL), 0);
	assert_int_equal(stat(path, &st), -1);
	image_free(img);

	assert_int_equal(image_open(dir, &img), 0);
	assert_int_equal(image_get(img, "pages-1.img", 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "abcdef", 6);
	free(buf);
	assert_false(image_has(img, "pages-2.img"));
	image_free(img);

	/* A dump that fails: nothing reserved is left. */
	snprintf(dir, sizeof(dir), "%s/rolled", f->tmp);
	assert_int_equal(image_create(dir, &img), 0);
	assert_int_equal(image_reserve(img, "pages-3.img", 4096), 0);
	image_discard(img);
	assert_int_equal(stat(dir, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refuses_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_file_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checksum_in_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_json_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
		cmocka_unit_test(test_pagesums_blocks),
		cmocka_unit_test(test_xxh3_fast),
	};

	/* The refusals are expected: keep their messages out of the output. */
	log_set_level(getenv("STASIS_TEST_VERBOSE") ? LOG_DEBUG : LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
