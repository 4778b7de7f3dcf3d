/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unix connections to a process outside the tree (a psql connected to
 * PostgreSQL's socket, a client of D-Bus or of a logging daemon). The
 * other end cannot be saved, so by default the dump refuses; the user may
 * choose what the restored end becomes:
 *  --unix-close      closed: the record becomes that of a socket whose
 *                    peer has closed (sk-unix.c restores it as one end of
 *                    a pair whose other end is closed once the queue is
 *                    refilled), so the program reads what was queued,
 *                    then EOF, as if the outside process had gone.
 *  --unix-reconnect  where the outside end is a named socket (we are the
 *                    client of a listener, or a dgram socket sending to a
 *                    named one), connected to that name again, as a
 *                    dgram socket connected to a named one already is
 *                    (connect_by_name). What was queued for us came from
 *                    the old connection and is dropped. */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "engine/sockets.h"
#include "util/log.h"

static bool peer_named(const struct sk_rec *s)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&s->peer_name.ss;
	/* a relative name would be looked up in our cwd, not the process's */
	return s->peer_name.len > offsetof(struct sockaddr_un, sun_path) &&
	       (un->sun_path[0] == '\0' || un->sun_path[0] == '/');
}

static void reconnect(pid_t pid, int fd, struct sk_rec *s, const char *pname)
{
	if (s->queue_len || s->nmsgs)
		log_warn("pid %d: fd %d: the %zu bytes queued on the %s connected to %s are dropped: it is connected "
			 "again at restore (--unix-reconnect)", pid, fd, s->queue_len, sk_kind_name(s), pname);
	free(s->queue);
	free(s->msg_len);
	s->queue = NULL;
	s->msg_len = NULL;
	s->queue_len = s->nmsgs = 0;
	s->connect_by_name = true;
	log_info("pid %d: fd %d: the %s connected to %s outside the tree is connected to it again at restore", pid,
		 fd, sk_kind_name(s), pname);
}

int sk_unix_outside(pid_t pid, int fd, struct sk_rec *s)
{
	char pname[256];
	bool has_name = s->peer_name.len > offsetof(struct sockaddr_un, sun_path);
	sk_addr_format(AF_UNIX, &s->peer_name, pname, sizeof(pname));
	/* A stream socket with a name of its own is a server's end (named
	 * after its listener): its outside peer is a client, not a listener. */
	bool client = s->type == SOCK_DGRAM || s->name.len <= offsetof(struct sockaddr_un, sun_path);
	if ((s->outside & SK_UNIX_RECONNECT) && peer_named(s) && client) {
		reconnect(pid, fd, s, pname);
		return 0;
	}
	if (s->outside & SK_UNIX_CLOSE) {
		log_info("pid %d: fd %d: the %s connected to %s outside the tree (peer socket:[%" PRIu64 "]) is "
			 "restored closed (--unix-close)", pid, fd, sk_kind_name(s), has_name ? pname : "a process",
			 s->peer_ino);
		s->peer_ino = 0; /* what a socket whose peer closed looks like */
		s->peer_name.len = 0;
		return 0;
	}
	log_error("pid %d: fd %d is a %s connected to a process outside the tree (peer socket:[%" PRIu64 "]%s%s), "
		  "which cannot be checkpointed; dump with --unix-close to restore it closed (the program reads EOF)%s",
		  pid, fd, sk_kind_name(s), s->peer_ino, has_name ? ", " : "", has_name ? pname : "",
		  peer_named(s) && client ? ", or with --unix-reconnect to connect it to that name again" : "");
	return -EOPNOTSUPP;
}
