/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A directory tree of a container (its writable layer, a tmpfs) saved into
 * the image as a tar, and put back: through tar(1), keeping overlay
 * whiteouts (character devices), opaque directories (trusted.* xattrs),
 * owners and modes as they are. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"

int rt_archive_save(struct image *img, const char *dir, const char *name)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execlp("tar", "tar", "--xattrs", "--xattrs-include=trusted.*", "--numeric-owner", "-C", dir, "-cf",
		       "-", ".", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	struct image_stream *s = NULL;
	int r = pid < 0 ? -errno : image_stream_open(img, name, &s);
	char buf[65536];
	for (ssize_t n; r >= 0 && (n = read(p[0], buf, sizeof(buf))) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		r = n < 0 ? -errno : image_stream_write(s, buf, (size_t)n);
	}
	close(p[0]);
	int w = pid > 0 ? rt_wait(pid) : 0;
	if (r >= 0 && w < 0)
		r = -EIO;
	if (r < 0) {
		if (pid > 0 && s)
			image_stream_abort(s);
		return log_error_errno(r, "cannot save %s of the container (%s): %m", name, dir);
	}
	return image_stream_close(s);
}

int rt_archive_apply(struct image *img, const char *name, const char *dest)
{
	_cleanup_close_ int fd = -1;
	uint64_t size;
	/* tar reads it by itself: check it against the manifest first. */
	int r = image_verify_file(img, name);
	if (r < 0 || (r = image_open_file(img, name, &fd, &size)) < 0)
		return r;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 0);
		execlp("tar", "tar", "--xattrs", "--xattrs-include=trusted.*", "--numeric-owner", "-xpf", "-", "-C", dest,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || rt_wait(pid) < 0)
		return log_error_errno(-EIO, "cannot apply %s of the image to %s", name, dest);
	return 0;
}
