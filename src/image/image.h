/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checkpoint image: a directory holding manifest.json and the files it
 * lists, each with its size and XXH3-64 checksum. The format is described
 * in docs/FORMAT.md, the names of the files in image/layout.h. Writers
 * create files 0600 and write manifest.json last (so an interrupted dump
 * leaves no valid image); readers never trust a size from disk without
 * checking it against the manifest and a cap. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/json.h"
#include "image/layout.h"

#define IMAGE_FORMAT "stasis-image"
#define IMAGE_VERSION 4
/* The oldest version read: version 4 only added optional fields (FORMAT.md). */
#define IMAGE_VERSION_MIN 3
#define IMAGE_MAX_JSON (64u << 20) /* cap for any JSON file we parse */

struct image;
struct image_stream;

/* --- writing --- */

/* Creates DIR (0700) if needed. Refuses (-EEXIST) a directory that already
 * holds a manifest.json, so an existing image is never overwritten. */
int image_create(const char *dir, struct image **ret);
/* Writes one file and records its size and checksum. */
int image_put(struct image *img, const char *name, const void *buf, size_t len);
int image_put_json(struct image *img, const char *name, const json_t *j);
/* A file written in pieces (page data). The checksum is computed as the
 * bytes go through; close records it. */
int image_stream_open(struct image *img, const char *name, struct image_stream **ret);
/* Before a dump's freeze: creates the file name, len bytes long, so that
 * the stream that later writes it (image_stream_open takes it, close
 * cuts it to what was written) finds its page-cache pages allocated and
 * touched: a fresh page costs ~1 us to allocate and touch first on these
 * machines, several ms per 10 MiB while the tree is frozen (DESIGN.md
 * §7). Best effort: on failure nothing is left. Files not taken go at
 * image_commit or image_rollback. */
int image_reserve(struct image *img, const char *name, uint64_t len);
int image_stream_write(struct image_stream *s, const void *buf, size_t len);
/* The two halves of image_stream_write, for a caller that checksums in
 * one thread and writes in another: every byte must go through both, in
 * the same order. */
int image_stream_hash(struct image_stream *s, const void *buf, size_t len);
int image_stream_write_hashed(struct image_stream *s, const void *buf, size_t len);
uint64_t image_stream_offset(const struct image_stream *s);
/* Also checksums the file in blocks (image/pagesums.h) as it is written,
 * into the image file sums_name, written when the stream is closed. */
int image_stream_sum_blocks(struct image_stream *s, const char *sums_name);
/* Compresses the file (zstd at level, multi-threaded; before the first
 * write). Offsets and block sums stay those of the uncompressed data; the
 * manifest lists the compressed size and checksum, "compression": "zstd"
 * and "raw_size" (docs/FORMAT.md). */
int image_stream_compress(struct image_stream *s, int level);
/* The level the engine compresses page data with (dump --compress), 0:
 * not compressed (the default). */
void image_set_page_compression(struct image *img, int level);
int image_page_compression(const struct image *img);
/* Bytes on disk so far (compressed ones for a compressed stream). */
uint64_t image_stream_stored(const struct image_stream *s);
/* Records the file in the image (on success) and frees the stream. */
int image_stream_close(struct image_stream *s);
/* Frees a stream without recording it (error paths). NULL-safe. */
void image_stream_abort(struct image_stream *s);
/* Writes manifest.json: the caller's body (type, tree, cpu, ...) plus
 * format, version, stasis version, creation time, kernel release and the
 * file list. Steals no reference. After this the image is complete. */
int image_commit(struct image *img, const json_t *body);

/* Durability: every file is fsync'ed as it is closed, and image_commit
 * flushes manifest.json, the directory and (when image_create made it) its
 * parent, so that a committed image survives a power cut. STASIS_NOSYNC=1
 * in the environment skips the flushes (for benchmarks that compare). */

/* The names of the files being written, each recorded before its file is
 * created, in memory the writer shares with a process that outlives it
 * (the dump's guardian): if the writer dies, that process removes them. */
#define IMAGE_JOURNAL_SIZE (1u << 20)
struct image_journal {
	uint64_t len; /* bytes of names used: "a\0b\0" */
	char names[IMAGE_JOURNAL_SIZE];
};
void image_set_journal(struct image *img, struct image_journal *j);
/* Removes the files the journal names, any manifest, and the directory
 * when image_create made it and it is left empty. For the writer's
 * guardian (which has a copy of img from before the writer died). */
void image_journal_undo(struct image *img, const struct image_journal *j);

/* --- reading --- */

/* Opens and validates manifest.json: format name, version, file list
 * (names are plain file names, sizes match what is on disk). Errors are
 * logged with the file name and the problem; returns -EBADMSG for a
 * damaged or foreign image, -ENOENT when there is no image. */
int image_open(const char *dir, struct image **ret);
/* The parsed manifest (borrowed reference). */
json_t *image_manifest(const struct image *img);
const char *image_dir(const struct image *img);
bool image_has(const struct image *img, const char *name);
/* Reads a listed file whole, checking size <= max and its checksum. */
int image_get(struct image *img, const char *name, size_t max, void **ret_buf, size_t *ret_len);
int image_get_json(struct image *img, const char *name, json_t **ret);
/* Opens a listed file for reading (O_RDONLY|O_CLOEXEC) without reading it;
 * ret_size is the size the manifest lists (already checked on open). */
int image_open_file(struct image *img, const char *name, int *ret_fd, uint64_t *ret_size);
/* The checksum (XXH3-64) the manifest lists for a file, for a reader that
 * checks it later and elsewhere (the lazy filler: engine/lazy.h). */
int image_file_xxh3(struct image *img, const char *name, uint64_t *ret_hash);
/* Streams a listed file through the checksum (for big files read by other
 * means, e.g. page data filled straight into a process). */
int image_verify_file(struct image *img, const char *name);
/* The same for a file whose bytes the caller reads itself, in order
 * (page data read in chunks by several threads, one file each): add
 * every byte once; end says whether they were the listed ones (logged:
 * -EBADMSG). A check is used by one thread at a time. */
struct image_check;
int image_check_open(struct image *img, const char *name, struct image_check **ret);
void image_check_add(struct image_check *c, const void *buf, size_t len);
int image_check_end(struct image_check *c);
void image_check_free(struct image_check *c);

/* Compressed files (image_stream_compress): whether name is one, its
 * uncompressed size (-EBADMSG: not listed), and a reader that streams
 * the data back in order; image_zread returns exactly len bytes or logs
 * (damaged: -EBADMSG), image_zread_end checks the frame ended there. */
bool image_compressed(const struct image *img, const char *name);
/* The total size on disk of the compressed files listed so far. */
uint64_t image_compressed_bytes(const struct image *img);
int image_raw_size(const struct image *img, const char *name, uint64_t *ret);
struct image_zreader;
int image_zread_open(struct image *img, const char *name, struct image_zreader **ret);
int image_zread(struct image_zreader *z, void *buf, size_t len);
int image_zread_end(struct image_zreader *z);
void image_zread_close(struct image_zreader *z);

/* Writing, not committed: removes the files written so far and forgets
 * them, keeping the directory and the image open. For an engine that
 * failed in a child of the image's creator: the creator discards. */
void image_rollback(struct image *img);
/* Frees the image (writing: without committing). NULL-safe. */
void image_free(struct image *img);
/* Writing, not committed: removes every file written so far (and the
 * directory when that leaves it empty), then frees. For failed dumps. */
void image_discard(struct image *img);
