/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Terminals the tree owns: pseudo-terminal pairs (`ptmx` masters opened
 * from /dev/ptmx, `pts` slaves /dev/pts/N) and /dev/tty (`tty`).
 *
 * A pty belongs to the tree when a process of the tree holds its master.
 * Its state is read through the master, which the kernel lets anyone ask
 * (the slave's ioctls want the caller's controlling terminal): the slave's
 * termios (TCGETS2 on a master acts on the slave), window size, packet
 * mode, lock, the session it controls and its foreground group, and the
 * bytes queued both ways. A slave whose master is outside the tree (the
 * terminal stasis runs in) stays external on fds 0-2 (files-ext.c) and is
 * refused elsewhere.
 *
 * Restore: the restorer opens /dev/ptmx (in the processes' root, so a
 * container gets its own devpts), asks for the old pts number by opening
 * masters until the kernel hands it out (devpts gives the lowest free
 * index: when the old one is taken the pair gets another, with a
 * warning), opens each slave description with TIOCGPTPEER, puts the
 * queues back, then the settings, and passes the ends in. The session
 * leader takes the slave as its controlling terminal (TIOCSCTTY) before it
 * forks (restore-tree.c: a child copies its parent's terminal at fork),
 * and the foreground group is set once every group exists (TIOCSPGRP).
 *
 * Queues: bytes waiting for the slave's reader are read on a slave of our
 * own with the line discipline switched to non-canonical for a moment (so
 * that a line being typed comes too), and written back through the master
 * with echo, signals, input mapping and editing characters off, which
 * rebuilds complete lines and the partial one; bytes waiting for the
 * master's reader are read from the master and written back through the
 * slave with output processing off. The dump puts them back into the
 * original at once, so it runs on unchanged. Not readable from outside, so
 * not kept: a pending packet-mode status byte, the master's own termios
 * (TCGETS on a master reads the slave's), the column the line editor
 * counts for erasing tabs, and whether a slave was never opened (a master
 * alone comes back as one whose slave was closed). */
#include <asm/termbits.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/files.h"
#include "engine/fsroot.h"
#include "engine/syscalls.h"
#include "engine/tree.h"
#include "engine/tty.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_ptmx_ops, fd_pts_ops;

#define PTY_SLAVE_MAJOR 136 /* UNIX98_PTY_SLAVE_MAJOR, 8 majors of 256 */
#define PTY_MAX_INDEX (8 * 256)
#define PTY_QUEUE_MAX (1u << 20)
#define PTY_KEY (1ULL << 61) /* our slave of pty N in the made table: PTY_KEY | N */

struct pty_state {
	uint32_t index; /* the pts number at dump */
	uint64_t dev;   /* dump only: the devpts instance, for pairing */
	/* masters only */
	struct termios2 tio;
	struct winsize ws;
	int pkt, locked;
	bool hup;       /* its slave was closed by every holder */
	pid_t sid, fg;  /* the session it controls and its foreground group, or 0 */
	void *in, *out; /* queued for the slave's reader, for the master's */
	size_t nin, nout;
};

static struct pty_state *pty_of(const struct fd_rec *o)
{
	return o->ops == &fd_ptmx_ops || o->ops == &fd_pts_ops ? o->state : NULL;
}

static bool is_master(const struct fd_rec *o)
{
	return o->ops == &fd_ptmx_ops;
}

static void pty_free(void *state)
{
	struct pty_state *s = state;
	free(s->in);
	free(s->out);
}

/* --- dump --- */

static bool ptmx_match(const struct fd_probe *p)
{
	return p->st && S_ISCHR(p->st->st_mode) && p->st->st_rdev == makedev(5, 2);
}

static bool pts_match(const struct fd_probe *p)
{
	unsigned maj = p->st ? major(p->st->st_rdev) : 0;
	return p->st && S_ISCHR(p->st->st_mode) && maj >= PTY_SLAVE_MAJOR && maj < PTY_SLAVE_MAJOR + 8;
}

static bool devtty_match(const struct fd_probe *p)
{
	return p->st && S_ISCHR(p->st->st_mode) && p->st->st_rdev == makedev(5, 0);
}

/* Our copy of the process's fd (the same open file description). */
static int take_copy(pid_t pid, int fd)
{
	_cleanup_close_ int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return -errno;
	int r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	return r < 0 ? -errno : r;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* The settings, read through the master without changing anything. */
static int read_settings(int m, struct pty_state *s)
{
	int idx, r;
	struct stat st;
	if ((r = xioctl(m, TIOCGPTN, &idx)) < 0 || (r = xioctl(m, TCGETS2, &s->tio)) < 0 ||
	    (r = xioctl(m, TIOCGWINSZ, &s->ws)) < 0 || (r = xioctl(m, TIOCGPKT, &s->pkt)) < 0 ||
	    (r = xioctl(m, TIOCGPTLCK, &s->locked)) < 0)
		return r;
	s->index = (uint32_t)idx;
	/* An O_PATH peer opens nothing, even on a locked pty: its stat
	 * names the devpts instance the slaves of the tree are in. */
	_cleanup_close_ int peer = ioctl(m, TIOCGPTPEER, O_PATH | O_CLOEXEC);
	if (peer >= 0 && fstat(peer, &st) == 0)
		s->dev = st.st_dev;
	if (xioctl(m, TIOCGSID, &s->sid) < 0)
		s->sid = 0; /* no session has it */
	if (s->sid && xioctl(m, TIOCGPGRP, &s->fg) < 0)
		s->fg = 0;
	struct pollfd pf = { .fd = m, .events = POLLIN };
	s->hup = poll(&pf, 1, 0) > 0 && (pf.revents & POLLHUP);
	return 0;
}

static int ptmx_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct pty_state));
	if (r < 0)
		return r;
	_cleanup_close_ int m = take_copy(p->pid, p->fd);
	if (m < 0 || (r = read_settings(m, o->state)) < 0)
		return log_error_errno(m < 0 ? m : r, "pid %d: cannot read the pseudo-terminal of fd %d (%s): %m",
				       p->pid, p->fd, p->link);
	return 0;
}

static int pts_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct pty_state));
	if (r < 0)
		return r;
	struct pty_state *s = o->state;
	s->index = (major(p->st->st_rdev) - PTY_SLAVE_MAJOR) * 256 + minor(p->st->st_rdev);
	s->dev = p->st->st_dev;
	return 0;
}

static const struct fd_rec *find_master(const struct files_proc *v, size_t n, uint32_t index, uint64_t dev,
					bool by_dev)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			if (is_master(o) && pty_of(o)->index == index && (!by_dev || pty_of(o)->dev == dev))
				return o;
		}
	return NULL;
}

/* A slave whose master is not the tree's leads outside: external on fds
 * 0-2, refused elsewhere. Two masters with one number (two devpts
 * instances) could not be told apart in the image. */
static int pty_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			struct pty_state *s = pty_of(o);
			const struct fd_rec *m = s ? find_master(v, n, s->index, s->dev, !is_master(o)) : NULL;
			if (s && is_master(o) && pty_of(m)->dev != s->dev)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d: two pseudo-terminals numbered %u in "
						       "different devpts instances cannot be checkpointed together",
						       v[i].pid, o->fd, s->index);
			if (!s || m)
				continue;
			if (o->fd > 2)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) is a terminal whose master is "
						       "outside the tree, which cannot be checkpointed", v[i].pid, o->fd,
						       o->path);
			fd_set_external(o);
		}
	return 0;
}

static int set_tio(int m, const struct termios2 *t)
{
	return xioctl(m, TCSETS2, (void *)t);
}

/* Waits until the line discipline behind fd holds want bytes (FIONREAD);
 * poll() makes the kernel push what the other end wrote. */
static void settle(int fd, int want)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int have = -1;
		(void)poll(&pf, 1, 0);
		if (ioctl(fd, FIONREAD, &have) < 0 || have >= want)
			return;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Reads what fd has now without waiting (our slave is O_NONBLOCK; the
 * master's description is the process's, so poll before each read). */
static int drain(int fd, void **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 0) <= 0 || !(pf.revents & POLLIN))
			break;
		if (cap - len < 4096) {
			if (cap >= PTY_QUEUE_MAX)
				return -E2BIG;
			char *b = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!b)
				return -ENOMEM;
			buf = b;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && (errno == EAGAIN || errno == EIO))
			break; /* EIO: the other side is closed and nothing is left */
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = len ? TAKE_PTR(buf) : NULL;
	*ret_len = len;
	return 0;
}

/* Input for the slave's reader, written through the master so that the
 * line discipline files it again as it was: lines stay lines, nothing is
 * echoed or turned into a signal or an edit. */
static int inject_input(int m, int slave, const struct termios2 *tio, const void *buf, size_t len)
{
	static const int special[] = { VINTR, VQUIT, VERASE, VKILL, VEOF, VSTART, VSTOP, VSUSP, VREPRINT,
				       VDISCARD, VWERASE, VLNEXT };
	struct termios2 t = *tio;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT | ECHOKE | ISIG);
	t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | ISTRIP | IUCLC | IXON | IXOFF | BRKINT | PARMRK | INPCK);
	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		t.c_cc[special[i]] = 0; /* _POSIX_VDISABLE */
	int have = 0, r = set_tio(m, &t);
	(void)ioctl(slave, FIONREAD, &have);
	if (r >= 0 && len)
		r = write_all(m, buf, len);
	if (r >= 0 && len)
		settle(slave, have + (tio->c_lflag & ICANON ? 1 : (int)len));
	int e = set_tio(m, tio);
	return r < 0 ? r : e;
}

/* Output for the master's reader, written through the slave with output
 * processing off so that no byte is mapped twice. */
static int inject_output(int m, int slave, const struct termios2 *tio, const void *buf, size_t len)
{
	if (!len)
		return 0;
	struct termios2 t = *tio;
	int have = 0;
	t.c_oflag &= ~(tcflag_t)OPOST;
	(void)ioctl(m, FIONREAD, &have);
	int r = set_tio(m, &t);
	if (r >= 0)
		r = write_all(slave, buf, len);
	if (r >= 0)
		settle(m, have + (int)len);
	int e = set_tio(m, tio);
	return r < 0 ? r : e;
}

/* Reads the input queue (everything, a line being typed too) on our own
 * slave, in non-canonical mode for the moment, and puts it back. */
static int read_input(int m, int slave, struct pty_state *s)
{
	struct termios2 t = s->tio;
	t.c_lflag &= ~(tcflag_t)ICANON;
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	int r = set_tio(m, &t);
	if (r >= 0)
		r = drain(slave, &s->in, &s->nin);
	int e = set_tio(m, &s->tio);
	if (r < 0 || e < 0)
		return r < 0 ? r : e;
	return inject_input(m, slave, &s->tio, s->in, s->nin);
}

/* The queues, read and put back at once: the original runs on as it was
 * whatever the rest of the dump does. Packet mode is off while the master
 * is read (its reads would add a status byte). */
static int read_queues(int m, struct pty_state *s)
{
	int zero = 0, r;
	if (s->locked)
		return 0; /* no slave was ever opened: nothing can be queued */
	/* Our slave (its close leaves a closed one closed, an open one open). */
	_cleanup_close_ int slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (slave < 0)
		return -errno;
	if (s->pkt && (r = xioctl(m, TIOCPKT, &zero)) < 0)
		return r;
	r = drain(m, &s->out, &s->nout);
	if (r >= 0)
		r = read_input(m, slave, s);
	if (r >= 0)
		r = inject_output(m, slave, &s->tio, s->out, s->nout);
	if (s->pkt)
		(void)ioctl(m, TIOCPKT, &s->pkt);
	return r;
}

static int ptmx_dump_data(struct fd_dump *d, struct fd_rec *o)
{
	struct pty_state *s = o->state;
	if (o->dup_of >= 0)
		return 0; /* restore makes the pty from the first holder's record */
	_cleanup_close_ int m = fd_dump_take(d, o->fd);
	if (m < 0)
		return m;
	int r = read_queues(m, s);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read the bytes queued in the pseudo-terminal of fd %d: %m",
				       d->pid, o->fd);
	return 0;
}

/* --- records --- */

static void ptmx_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct pty_state *s = o->state;
	jb_int(b, "pty", (int)s->index);
	jb_hex(b, "termios", &s->tio, sizeof(s->tio));
	jb_int(b, "rows", s->ws.ws_row);
	jb_int(b, "cols", s->ws.ws_col);
	jb_int(b, "xpixel", s->ws.ws_xpixel);
	jb_int(b, "ypixel", s->ws.ws_ypixel);
	jb_bool(b, "packet", s->pkt);
	jb_bool(b, "locked", s->locked);
	jb_bool(b, "hup", s->hup);
	jb_int(b, "sid", s->sid);
	jb_int(b, "fg", s->fg);
	jb_hex(b, "in", s->in, s->nin);
	jb_hex(b, "out", s->out, s->nout);
}

static void pts_to_json(const struct fd_rec *o, struct json_builder *b)
{
	jb_int(b, "pty", (int)pty_of(o)->index);
}

static int get_index(const json_t *j, struct fd_rec *o)
{
	int idx, r = fd_state_alloc(o, sizeof(struct pty_state));
	if (r < 0 || (r = json_get_int(j, "pty", &idx)) < 0)
		return r;
	if (idx < 0 || idx >= PTY_MAX_INDEX)
		return -EBADMSG;
	pty_of(o)->index = (uint32_t)idx;
	return 0;
}

static int get_u16(const json_t *j, const char *key, unsigned short *ret)
{
	int v, r = json_get_int(j, key, &v);
	if (r < 0 || v < 0 || v > 65535)
		return r < 0 ? r : -EBADMSG;
	*ret = (unsigned short)v;
	return 0;
}

static int ptmx_from_json(const json_t *j, struct fd_rec *o)
{
	int r = get_index(j, o);
	struct pty_state *s = o->state;
	bool pkt, locked;
	if (r < 0 || (r = json_get_hex(j, "termios", &s->tio, sizeof(s->tio))) < 0 ||
	    (r = get_u16(j, "rows", &s->ws.ws_row)) < 0 || (r = get_u16(j, "cols", &s->ws.ws_col)) < 0 ||
	    (r = get_u16(j, "xpixel", &s->ws.ws_xpixel)) < 0 || (r = get_u16(j, "ypixel", &s->ws.ws_ypixel)) < 0 ||
	    (r = json_get_bool(j, "packet", &pkt)) < 0 || (r = json_get_bool(j, "locked", &locked)) < 0 ||
	    (r = json_get_bool(j, "hup", &s->hup)) < 0 || (r = json_get_int(j, "sid", &s->sid)) < 0 ||
	    (r = json_get_int(j, "fg", &s->fg)) < 0 ||
	    (r = json_get_hex_alloc(j, "in", PTY_QUEUE_MAX, &s->in, &s->nin)) < 0 ||
	    (r = json_get_hex_alloc(j, "out", PTY_QUEUE_MAX, &s->out, &s->nout)) < 0)
		return r;
	s->pkt = pkt;
	s->locked = locked;
	if (s->sid < 0 || s->fg < 0 || (s->locked && s->sid))
		return -EBADMSG;
	return 0;
}

static int pts_from_json(const json_t *j, struct fd_rec *o)
{
	return get_index(j, o);
}

/* --- restore --- */

static const struct fd_rec *master_of(const struct files_ctx *c, uint32_t index)
{
	return find_master(c->all, c->nall, index, 0, false);
}

/* Opens masters until the kernel gives out the old number (it hands out
 * the lowest free one) or a higher one (the old one is taken). */
static int open_ptmx(const char *path, uint32_t want, int *ret)
{
	int fds[PTY_MAX_INDEX + 1], n = 0, r = 0, idx = -1;
	while (n <= (int)want) {
		int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && n > 0)
			break; /* out of fds or ptys on the way: the last one will do */
		if (fd < 0 || (r = xioctl(fd, TIOCGPTN, &idx)) < 0) {
			r = fd < 0 ? -errno : r;
			if (fd >= 0)
				close(fd);
			break;
		}
		fds[n++] = fd;
		if (idx >= (int)want)
			break;
	}
	for (int i = 0; i < n - 1; i++)
		close(fds[i]);
	if (r < 0 || n == 0) {
		if (n)
			close(fds[n - 1]);
		return r < 0 ? r : -ENODEV;
	}
	if (idx != (int)want)
		log_warn("pseudo-terminal /dev/pts/%u is taken: restored as /dev/pts/%d", want, idx);
	*ret = fds[n - 1];
	return 0;
}

/* Makes every slave description of pty index that the tree holds. */
static int open_slaves(struct files_ctx *c, int m, uint32_t index)
{
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (x->ops != &fd_pts_ops || pty_of(x)->index != index || x->dup_of >= 0 ||
			    files_ctx_find(c, x->desc) >= 0)
				continue;
			int flags = (int)(x->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY | O_CLOEXEC;
			int fd = ioctl(m, TIOCGPTPEER, flags), e = fd < 0 ? -errno : files_ctx_add(c, x->desc, fd);
			if (e < 0)
				return e;
		}
	return 0;
}

/* The settings, after the queues (which are written with some of them off). */
static int apply_settings(int m, int slave, const struct pty_state *s)
{
	int r, one = 1;
	if ((r = inject_input(m, slave, &s->tio, s->in, s->nin)) < 0 ||
	    (r = inject_output(m, slave, &s->tio, s->out, s->nout)) < 0 || (r = xioctl(m, TIOCSWINSZ, (void *)&s->ws)) < 0 ||
	    (s->pkt && (r = xioctl(m, TIOCPKT, &one)) < 0))
		return r;
	return 0;
}

/* Makes pty `index` (once): the master, our own slave, every slave the
 * tree holds, with queues and settings. */
static int pty_make_all(struct files_ctx *c, const struct fd_rec *mo)
{
	const struct pty_state *s = mo->state;
	char p[PATH_MAX + 64];
	int m = -1, zero = 0, e;
	if (files_ctx_find(c, PTY_KEY | s->index) >= 0)
		return 0;
	if (!fsroot_path(c->fsroot, mo->path, p, sizeof(p)))
		return -ENAMETOOLONG;
	if ((e = open_ptmx(p, s->index, &m)) < 0 || (e = files_ctx_add(c, mo->desc, m)) < 0)
		return e;
	if ((e = xioctl(m, TIOCSPTLCK, &zero)) < 0)
		return e;
	int slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if ((e = slave < 0 ? -errno : files_ctx_add(c, PTY_KEY | s->index, slave)) < 0 ||
	    (e = apply_settings(m, slave, s)) < 0 || (e = open_slaves(c, m, s->index)) < 0)
		return e;
	if (s->locked && (e = xioctl(m, TIOCSPTLCK, (int[]){ 1 })) < 0)
		return e;
	return fcntl(m, F_SETFL, mo->flags & O_NONBLOCK) < 0 ? -errno : 0;
}

static int pty_make(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct fd_rec *m = master_of(x->c, pty_of(o)->index);
	int e = m ? pty_make_all(x->c, m) : -EBADMSG;
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot recreate the pseudo-terminal of fd %d (%s): %m", x->r->pid,
				       o->fd, o->path);
	return 0;
}

/* Our slave of the pty that session sid had as its terminal, passed into
 * pid; -ENOENT when the session had none of ours. */
static long push_slave(struct files_ctx *c, struct remote *r, pid_t pid, pid_t sid, const struct pty_state **ret)
{
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *o = &c->all[i].f->fds[k];
			if (!is_master(o) || pty_of(o)->sid != sid)
				continue;
			int e = pty_make_all(c, o);
			if (e < 0)
				return log_error_errno(e, "pid %d: cannot recreate its terminal /dev/pts/%u: %m", pid,
						       pty_of(o)->index);
			*ret = o->state;
			return fdpass_push(r, pid, c->ctl, FDPASS_STUB_FD, files_ctx_find(c, PTY_KEY | pty_of(o)->index));
		}
	return -ENOENT;
}

int tty_restore_ctty(struct files_ctx *c, struct remote *r, pid_t pid)
{
	const struct pty_state *s;
	long fd = push_slave(c, r, pid, pid, &s);
	if (fd == -ENOENT)
		return 0;
	long ret = fd < 0 ? fd : remote_syscall(r, pid, SYS_ioctl, fd, TIOCSCTTY, 0);
	if (fd >= 0)
		remote_syscall(r, pid, SYS_close, fd);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot make /dev/pts/%u its controlling terminal: %m", pid,
				       s->index);
	return 0;
}

int tty_restore_fg(struct files_ctx *c, struct remote *r, pid_t pid)
{
	const struct pty_state *s;
	long fd = push_slave(c, r, pid, pid, &s);
	if (fd == -ENOENT)
		return 0;
	long ret = fd < 0 || !s->fg ? fd : remote_write(r, r->scratch + 8192, &s->fg, sizeof(s->fg));
	if (ret >= 0 && s->fg)
		ret = remote_syscall(r, pid, SYS_ioctl, fd, TIOCSPGRP, r->scratch + 8192);
	if (fd >= 0)
		remote_syscall(r, pid, SYS_close, fd);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot put process group %d in the foreground of its "
				       "terminal: %m", pid, s->fg);
	return 0;
}

/* --- the sessions of the tree --- */

/* A session leader's terminal must be one of the tree's ptys. */
static int check_leaders(const struct tree *t, const struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_node *x = &t->v[i];
		unsigned maj = major((dev_t)x->tty), mnr = minor((dev_t)x->tty);
		bool pty = maj >= PTY_SLAVE_MAJOR && maj < PTY_SLAVE_MAJOR + 8;
		const struct fd_rec *m = pty ? find_master(v, n, (maj - PTY_SLAVE_MAJOR) * 256 + mnr, 0, false) : NULL;
		if (x->sid == x->pid && x->tty && (!m || pty_of(m)->sid != x->pid))
			return log_error_errno(-EOPNOTSUPP, "pid %d leads a session with a controlling terminal (tty "
					       "%u:%u) whose master is not held by the tree, which cannot be "
					       "checkpointed", x->pid, maj, mnr);
	}
	return 0;
}

/* A pty of the tree must control a session of the tree, if any; a
 * foreground group that no process of the tree is in any more (a job
 * that ended) is left to the leader's. */
int tty_check_sessions(const struct tree *t, struct files_proc *v, size_t n)
{
	int r = check_leaders(t, v, n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			struct pty_state *s = is_master(o) ? o->state : NULL;
			const struct tree_node *leader = s && s->sid ? tree_find(t, s->sid) : NULL;
			if (!s || !s->sid)
				continue;
			if (!leader || leader->sid != s->sid)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d: /dev/pts/%u is the terminal of "
						       "session %d, which is not part of the tree", v[i].pid, o->fd,
						       s->index, s->sid);
			bool fg_known = false;
			for (size_t j = 0; j < t->n; j++)
				fg_known |= !t->v[j].zombie && t->v[j].pgid == s->fg && t->v[j].sid == s->sid;
			if (!fg_known)
				s->fg = 0;
		}
	return r;
}

/* --- /dev/tty --- */

static long devtty_open(const struct fd_restore *x, const struct fd_rec *o)
{
	int flags = (int)(o->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY;
	long fd = remote_open(x->r, x->tid, "/dev/tty", flags, 0);
	if (fd < 0)
		log_error_errno((int)fd, "pid %d: cannot open /dev/tty again for fd %d: %m", x->r->pid, o->fd);
	return fd;
}

const struct fd_ops fd_ptmx_ops = {
	.name = "ptmx",
	.match = ptmx_match,
	.collect = ptmx_collect,
	.link = pty_link,
	.dump_data = ptmx_dump_data,
	.to_json = ptmx_to_json,
	.from_json = ptmx_from_json,
	.free = pty_free,
	.make = pty_make,
};

const struct fd_ops fd_pts_ops = {
	.name = "pts",
	.match = pts_match,
	.collect = pts_collect,
	.to_json = pts_to_json,
	.from_json = pts_from_json,
	.free = pty_free,
	.make = pty_make,
};

const struct fd_ops fd_tty_ops = {
	.name = "tty",
	.match = devtty_match,
	.open = devtty_open,
};
