/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Container payload for bench/containers.py: touches N MiB (argv[1]) with a
 * pattern, then sleeps. Linked statically, so it runs in a busybox image. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	unsigned char *p = malloc(mib << 20);
	if (!p)
		return 1;
	for (size_t i = 0; i < mib << 20; i++)
		p[i] = (unsigned char)(i * 131 + 7);
	for (;;)
		pause();
}
