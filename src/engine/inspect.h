/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What an image holds, for people (stasis inspect). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "image/image.h"

/* Prints the tree and, for each live process, its threads, memory map and
 * fds, read and checked as the restore reads them (as_json: the manifest
 * and the records as JSON). A damaged record is an error, logged. */
int inspect_image(struct image *img, bool as_json, FILE *out);
