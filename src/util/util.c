/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by every layer. None of them log: callers know the
 * context (which file, which pid) and log once. */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"

enum io_op { IO_READ, IO_PREAD, IO_WRITE, IO_PWRITE };

/* The loop behind the four below: the whole length or an error, retried
 * on EINTR and short transfers; a transfer of 0 (EOF, full device) is
 * -EIO. off advances only for the positional ones. */
static int io_all(enum io_op op, int fd, char *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = op == IO_READ    ? read(fd, p, len)
			    : op == IO_PREAD ? pread(fd, p, len, off)
			    : op == IO_WRITE ? write(fd, p, len)
					     : pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	return io_all(IO_WRITE, fd, (char *)buf, len, 0);
}

int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	return io_all(IO_PWRITE, fd, (char *)buf, len, off);
}

int read_exact(int fd, void *buf, size_t len)
{
	return io_all(IO_READ, fd, buf, len, 0);
}

int pread_exact(int fd, void *buf, size_t len, off_t off)
{
	return io_all(IO_PREAD, fd, buf, len, off);
}

/* Reads until EOF, at most max bytes. The buffer holds max + 1 bytes plus
 * the NUL so one byte too many is seen; the size from fstat is only a hint
 * (/proc files report 0, a file may grow while we read it). */
int read_fd_capped(int fd, size_t max, char **ret_buf, size_t *ret_len)
{
	struct stat st;
	size_t cap, len = 0;
	_cleanup_free_ char *buf = NULL;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (max > SIZE_MAX - 2)
		max = SIZE_MAX - 2;
	if (st.st_size > 0 && (uint64_t)st.st_size > max)
		return -EFBIG;
	cap = st.st_size > 0 ? (size_t)st.st_size + 2 : 4096;
	if (cap > max + 2)
		cap = max + 2;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap - 1) {
			size_t ncap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int read_file_at(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return read_fd_capped(fd, max, ret_buf, ret_len);
}

int write_file_at(int dirfd, const char *path, const void *buf, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, buf, len);
	if (r < 0)
		return r;
	if (close(TAKE_FD(fd)) < 0)
		return -errno;
	return 0;
}

int parse_u64(const char *s, int base, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return -EINVAL;
	/* strtoull accepts leading space and '-' (wrapping the value): refuse. */
	if (*s == '-' || *s == '+' || *s == ' ' || (*s >= '\t' && *s <= '\r'))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_int(const char *s, int *ret)
{
	char *end;
	long v;

	if (!s || !*s || *s == ' ' || (*s >= '\t' && *s <= '\r'))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
		return -ERANGE;
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

int parse_pid(const char *s, pid_t *ret)
{
	uint64_t v;
	int r = parse_u64(s, 10, &v);
	if (r < 0)
		return r;
	/* Linux pids are 1..2^22 (pid_max limit); 0 is never a process. */
	if (v == 0 || v > (1u << 22))
		return -ERANGE;
	*ret = (pid_t)v;
	return 0;
}

char *hex_encode(const void *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = buf;
	char *s;

	if (len > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(len * 2 + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0xf];
	}
	s[len * 2] = '\0';
	return s;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *hex, void *buf, size_t len)
{
	unsigned char *p = buf;

	if (!hex || strlen(hex) != len * 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		p[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t start_ns;

void mark_start(void)
{
	start_ns = now_ns();
}

uint64_t started_ns(void)
{
	return start_ns;
}

bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

bool startswith(const char *s, const char *prefix)
{
	return s && prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool path_is_normal(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	if (streq(p, "/"))
		return true;
	for (const char *c = p; *c; c++) {
		if (*c != '/')
			continue;
		/* c starts a component: it must be neither empty, "." nor "..". */
		const char *e = strchrnul(c + 1, '/');
		size_t l = (size_t)(e - c - 1);
		if (l == 0 || (l == 1 && c[1] == '.') || (l == 2 && c[1] == '.' && c[2] == '.'))
			return false;
	}
	return true;
}

uint64_t env_count_or_cpus(const char *name, const char *what)
{
	const char *env = getenv(name);
	uint64_t n = 0;
	if (env && *env && parse_u64(env, 10, &n) >= 0)
		return n;
	if (env && *env)
		log_warn("%s=%s is not a number of %s: ignored", name, env, what);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 0 ? (uint64_t)cpus : 1;
}
