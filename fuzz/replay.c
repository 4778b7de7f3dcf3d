/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs the fuzz target on every file of the given directories, so the seed
 * corpus and the crashes once found are replayed by every build (gcc too,
 * no libFuzzer needed). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/util.h"

#define REPLAY_MAX_INPUT (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static int replay_dir(const char *path, unsigned *count)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		fprintf(stderr, "fuzz-replay: cannot open '%s': %m\n", path);
		return -1;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *buf = NULL;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		if (read_file_at(dirfd(d), de->d_name, REPLAY_MAX_INPUT, &buf, &len) < 0) {
			fprintf(stderr, "fuzz-replay: cannot read '%s/%s'\n", path, de->d_name);
			return -1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
		(*count)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	for (int i = 1; i < argc; i++)
		if (replay_dir(argv[i], &count) < 0)
			return 1;
	printf("fuzz-replay: %u inputs replayed\n", count);
	return 0;
}
