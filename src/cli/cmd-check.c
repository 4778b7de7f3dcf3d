/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <sys/utsname.h>

#include "cli/cli.h"
#include "engine/kernel.h"

int cmd_check(int argc, char **argv)
{
	struct utsname u;
	size_t n;
	int missing = 0;

	if (argc > 1 && argv[1][0] != '-')
		return usage_error("check", "unexpected argument '%s'", argv[1]);
	uname(&u);
	printf("kernel %s %s\n", u.release, u.machine);
	const struct kfeature *f = kernel_features(&n);
	for (size_t i = 0; i < n; i++) {
		printf("  %-4s %-34s %s%s\n", f[i].present ? "yes" : "NO", f[i].name, f[i].why,
		       f[i].required ? "" : " [optional]");
		if (f[i].required && !f[i].present)
			missing++;
	}
	if (missing) {
		fprintf(stderr, "stasis: %d required feature%s missing\n", missing, missing > 1 ? "s are" : " is");
		return 1;
	}
	printf("all required features are present\n");
	return 0;
}
