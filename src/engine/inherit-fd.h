/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --inherit-fd: an fd of the restorer that the restored root gets in
 * place of one that led outside the tree. Its own header: the restore
 * options (dump.h) and the fd code (files.h) both need it. */
#pragma once

struct inherit_fd {
	int target_fd; /* fd number in the restored process */
	int our_fd;    /* fd of the restorer that it gets */
};
