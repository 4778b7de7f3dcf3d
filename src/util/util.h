/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers: full reads/writes, number parsing, hex, time. All return
 * >= 0 on success and -errno on failure; none of them log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif

/* write()/pwrite() until everything is written (EINTR-safe). */
int write_all(int fd, const void *buf, size_t len);
int pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* read()/pread() exactly len bytes; -EIO on a short file. */
int read_exact(int fd, void *buf, size_t len);
int pread_exact(int fd, void *buf, size_t len, off_t off);
/* Reads fd until EOF into a NUL-terminated malloc'd buffer; more than max
 * bytes is -EFBIG. */
int read_fd_capped(int fd, size_t max, char **ret_buf, size_t *ret_len);
/* Reads a whole file (relative to dirfd, AT_FDCWD allowed) into a
 * NUL-terminated malloc'd buffer; refuses files larger than max (-EFBIG). */
int read_file_at(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len);
/* Writes a file 0600 atomically enough for images (O_CREAT|O_TRUNC);
 * refuses to follow a symlink at path (O_NOFOLLOW: -ELOOP). */
int write_file_at(int dirfd, const char *path, const void *buf, size_t len);

/* Strict number parsing: whole string, no sign surprises, range-checked. */
int parse_u64(const char *s, int base, uint64_t *ret);
/* How many threads of a kind: the environment variable name's number,
 * or the online CPUs where it is unset or empty, or not a number (then
 * a warning names what, e.g. "drivers"). */
uint64_t env_count_or_cpus(const char *name, const char *what);
int parse_int(const char *s, int *ret);
int parse_pid(const char *s, pid_t *ret);

/* Lowercase hex. hex_encode returns a malloc'd string or NULL. */
char *hex_encode(const void *buf, size_t len);
/* Decodes exactly 2*len hex digits into buf; -EINVAL on anything else. */
int hex_decode(const char *hex, void *buf, size_t len);

uint64_t now_ns(void);           /* CLOCK_MONOTONIC */
/* When main began (CLOCK_MONOTONIC ns; 0 before mark_start): times a
 * user sees, such as a restore's time to resume, count from there. */
void mark_start(void);
uint64_t started_ns(void);
bool streq(const char *a, const char *b);
/* An absolute path in normal form, as /proc shows one: starts with '/',
 * no empty, "." or ".." component (so no "//", "/./", "/../"), no
 * trailing '/' but in "/" itself, shorter than PATH_MAX. What a record may hold before the kernel is handed it. */
bool path_is_normal(const char *p);
bool startswith(const char *s, const char *prefix);
