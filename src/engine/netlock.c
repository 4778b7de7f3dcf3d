/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network lock's nftables side (netlock.h): the table, taken,
 * released, handed over to an image, and swept when its owner is gone.
 * Commands go to libnftables as text, one buffer a transaction. For a
 * table in another network namespace, the calling thread joins it while
 * it opens the context (a netlink socket belongs to the namespace it was
 * opened in). */
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/netlock.h"
#include "util/cleanup.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/util.h"

#define SCRIPT_MAX (64u << 20)

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Field 22 of /proc/PID/stat: when the process started (clock ticks
 * after boot); with the pid, it names one process for good. */
static int start_time(pid_t pid, uint64_t *ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int r = read_file_at(AT_FDCWD, path, 4096, &buf, &len);
	if (r < 0)
		return r;
	const char *p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	/* after ") ": state is field 3; starttime is field 22 */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%" SCNu64, ret) != 1)
		return -EBADMSG;
	return 0;
}

static void own_name(const char *prefix, char *buf, size_t size)
{
	uint64_t st = 0;
	(void)start_time(getpid(), &st);
	snprintf(buf, size, "%s%d-%" PRIu64, prefix, getpid(), st);
}

void netlock_image_name(char *buf, size_t size)
{
	own_name("stasis-image-", buf, size);
}

void netlock_own_name(char *buf, size_t size)
{
	own_name("stasis-", buf, size);
}

/* --- the commands --- */

struct strbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void sb_add(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->err)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || b->len + (size_t)n + 1 > SCRIPT_MAX) {
		b->err = -E2BIG;
		return;
	}
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->err = -ENOMEM;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* "a.b.c.d . port . e.f.g.h . port", local to remote when out. */
static void add_element(struct strbuf *b, const struct netlock_conn *c, bool out, bool *first)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	inet_ntop(c->family, c->src, src, sizeof(src));
	inet_ntop(c->family, c->dst, dst, sizeof(dst));
	if (out)
		sb_add(b, "%s%s . %u . %s . %u", *first ? "" : ", ", src, c->sport, dst, c->dport);
	else
		sb_add(b, "%s%s . %u . %s . %u", *first ? "" : ", ", dst, c->dport, src, c->sport);
	*first = false;
}

static void add_elements(struct strbuf *b, const char *fam, const char *name, const struct netlock_conn *v, size_t n,
			 int family)
{
	bool first = true;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += v[i].family == family;
	if (!k)
		return;
	sb_add(b, "add element %s %s %s { ", fam, name, family == AF_INET ? "c4" : "c6");
	for (size_t i = 0; i < n; i++)
		if (v[i].family == family) {
			add_element(b, &v[i], true, &first);
			add_element(b, &v[i], false, &first);
		}
	sb_add(b, " }\n");
}

/* Before connection tracking (priority raw, -300): a dropped packet
 * leaves no trace anywhere. The sets hold both directions. Our own
 * marked segments pass (NETLOCK_PASS_MARK); no notrack for them: that
 * would need connection tracking, which the lock otherwise never does.
 * fam is "inet" or "bridge", hooks NULL-terminated. */
static void add_family(struct strbuf *b, const char *fam, const char *const *hooks, const char *name,
		       const struct netlock_conn *v, size_t n, bool owned)
{
	sb_add(b, "add table %s %s%s\n", fam, name, owned ? " { flags owner; }" : "");
	sb_add(b, "add set %s %s c4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n", fam, name);
	sb_add(b, "add set %s %s c6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n", fam, name);
	for (size_t h = 0; hooks[h]; h++) {
		sb_add(b, "add chain %s %s %s { type filter hook %s priority -300; policy accept; }\n", fam, name,
		       hooks[h], hooks[h]);
		sb_add(b, "add rule %s %s %s meta mark 0x%x accept\n", fam, name, hooks[h], NETLOCK_PASS_MARK);
		sb_add(b, "add rule %s %s %s ip saddr . tcp sport . ip daddr . tcp dport @c4 drop\n", fam, name, hooks[h]);
		sb_add(b, "add rule %s %s %s ip6 saddr . tcp sport . ip6 daddr . tcp dport @c6 drop\n", fam, name,
		       hooks[h]);
	}
	add_elements(b, fam, name, v, n, AF_INET);
	add_elements(b, fam, name, v, n, AF_INET6);
}

static void add_table(struct strbuf *b, const char *name, const struct netlock_conn *v, size_t n, bool owned)
{
	static const char *const hooks[] = { "input", "output", NULL };
	add_family(b, "inet", hooks, name, v, n, owned);
}

/* The host's side of a container's network namespace: what the host
 * routes to it or from it (forward), sends or takes itself (output,
 * input), and what a bridge carries between it and another container
 * (the bridge family's forward hook, with or without br_netfilter). */
static void add_outer(struct strbuf *b, const char *name, const struct netlock_conn *v, size_t n)
{
	static const char *const hooks[] = { "input", "output", "forward", NULL };
	static const char *const bridge[] = { "forward", NULL };
	add_family(b, "inet", hooks, name, v, n, true);
	add_family(b, "bridge", bridge, name, v, n, true);
}

static char *script_of(const char *name, const struct netlock_conn *v, size_t n, bool outer)
{
	struct strbuf b = { 0 };
	if (outer)
		add_outer(&b, name, v, n);
	else
		add_table(&b, name, v, n, true);
	if (b.err) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

char *netlock_script(const char *name, const struct netlock_conn *v, size_t n)
{
	return script_of(name, v, n, false);
}

char *netlock_outer_script(const char *name, const struct netlock_conn *v, size_t n)
{
	return script_of(name, v, n, true);
}

/* --- running them --- */

/* libnftables (and the libraries it links) is loaded only for
 * a tree with TCP connections (see util/dynlib.h). */
#define NFT_FNS(X)                                                                           \
	X(nft_ctx_new) X(nft_ctx_free) X(nft_ctx_buffer_output) X(nft_ctx_buffer_error)        \
	X(nft_ctx_get_output_buffer) X(nft_ctx_get_error_buffer) X(nft_run_cmd_from_buffer)

static struct {
	NFT_FNS(DYNLIB_PTR)
} ln;
static const char *const ln_names[] = { NFT_FNS(DYNLIB_NAME) };
static struct dynlib ln_lib = { "libnftables.so.1", "to lock the network of TCP connections", "libnftables1",
				ln_names, (void **)&ln, ARRAY_SIZE(ln_names), 0 };

/* Runs script on nft; *ret_out: what nft printed (lists), when asked.
 * The error text goes to err (may be cut). */
static int nft_cmd(struct nft_ctx *nft, const char *script, char **ret_out, char *err, size_t errsize)
{
	int r = ln.nft_run_cmd_from_buffer(nft, script) == 0 ? 0 : -EIO;
	if (r < 0) {
		const char *e = ln.nft_ctx_get_error_buffer(nft);
		snprintf(err, errsize, "%.*s", (int)strcspn(e ? e : "", "\n"), e ? e : "");
		if (strstr(err, "Operation not permitted"))
			r = -EPERM;
		else if (strstr(err, "No such file or directory"))
			r = -ENOENT;
	} else if (ret_out) {
		const char *o = ln.nft_ctx_get_output_buffer(nft);
		*ret_out = strdup(o ? o : "");
		if (!*ret_out)
			r = -ENOMEM;
	}
	return r;
}

static struct nft_ctx *ctx_new(void)
{
	struct nft_ctx *nft = ln.nft_ctx_new(NFT_CTX_DEFAULT);
	if (nft) {
		ln.nft_ctx_buffer_output(nft);
		ln.nft_ctx_buffer_error(nft);
	}
	return nft;
}

static int nft_run(const char *script, char **ret_out, char *err, size_t errsize)
{
	int r = dynlib_load(&ln_lib);
	if (r < 0)
		return r;
	struct nft_ctx *nft = ctx_new();
	if (!nft)
		return -ENOMEM;
	r = nft_cmd(nft, script, ret_out, err, errsize);
	ln.nft_ctx_free(nft);
	return r;
}

static bool same_netns(pid_t pid)
{
	struct stat a, b;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (pid <= 0 || stat(path, &a) < 0 || stat("/proc/thread-self/ns/net", &b) < 0)
		return true;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* Our open fds: the ones libnftables opens (its netlink socket) are those
 * that were not there before, and get O_CLOEXEC (ctx_new_cloexec), since
 * a stub we execute must not keep our table alive. */
static int fd_list(int **ret, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
	int *v = NULL;
	size_t n = 0;
	if (!d)
		return -errno;
	for (struct dirent *e; (e = readdir(d));) {
		int fd;
		if (parse_int(e->d_name, &fd) < 0 || fd == dirfd(d))
			continue;
		int *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		(v = nv)[n++] = fd;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool in_list(const int *v, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == fd)
			return true;
	return false;
}

static struct nft_ctx *ctx_new_cloexec(void)
{
	_cleanup_free_ int *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	if (fd_list(&before, &nb) < 0)
		return NULL;
	struct nft_ctx *nft = ctx_new();
	if (!nft || fd_list(&after, &na) < 0)
		return nft;
	for (size_t i = 0; i < na; i++)
		if (!in_list(before, nb, after[i]))
			(void)fcntl(after[i], F_SETFD, FD_CLOEXEC);
	return nft;
}

/* Our table lives as long as the netlink socket that made it ("flags
 * owner"): the kernel removes it when we die, however we die. The socket
 * belongs to the namespace it is opened in: this thread joins the
 * tree's for that moment. */
static int open_ctx(struct netlock *l)
{
	int r = dynlib_load(&ln_lib);
	if (r < 0)
		return r;
	if (same_netns(l->ns_pid)) {
		l->nft = ctx_new_cloexec();
		return l->nft ? 0 : -ENOMEM;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", l->ns_pid);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || ours < 0 || setns(ns, CLONE_NEWNET) < 0)
		return -errno;
	l->nft = ctx_new_cloexec();
	if (setns(ours, CLONE_NEWNET) < 0)
		abort(); /* we would go on in the wrong namespace */
	return l->nft ? 0 : -ENOMEM;
}

static void close_ctx(struct netlock *l)
{
	if (l->nft)
		ln.nft_ctx_free(l->nft);
	l->nft = NULL;
}

/* A script in pid's network namespace, on a context of its own. */
static int nft_run_in(pid_t pid, const char *script, char *err, size_t errsize)
{
	struct netlock l = { .ns_pid = pid };
	int r = open_ctx(&l);
	if (r < 0)
		return r;
	r = nft_cmd(l.nft, script, NULL, err, errsize);
	close_ctx(&l);
	return r;
}

static int sort_conns(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct netlock_conn));
}

/* Both ends of a connection inside the tree show up twice, mirrored. */
static void dedup(struct netlock *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(l->conns[i].src, l->conns[i].dst, 16) > 0 ||
		    (!memcmp(l->conns[i].src, l->conns[i].dst, 16) && l->conns[i].sport > l->conns[i].dport)) {
			struct netlock_conn *c = &l->conns[i];
			uint8_t t[16];
			memcpy(t, c->src, 16), memcpy(c->src, c->dst, 16), memcpy(c->dst, t, 16);
			uint16_t p = c->sport;
			c->sport = c->dport, c->dport = p;
		}
	qsort(l->conns, l->n, sizeof(*l->conns), sort_conns);
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++)
		if (!k || memcmp(&l->conns[k - 1], &l->conns[i], sizeof(*l->conns)))
			l->conns[k++] = l->conns[i];
	l->n = k;
}

/* Builds and loads the lock's table(s) in our network namespace; the
 * callers say what a failure means for them. */
static int install(struct netlock *l, const char *prefix, bool outer, char *err, size_t errlen)
{
	char name[NETLOCK_NAME_MAX];
	dedup(l);
	own_name(prefix, name, sizeof(name));
	_cleanup_free_ char *script = script_of(name, l->conns, l->n, outer);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	int r = script ? open_ctx(l) : -ENOMEM;
	if (r >= 0 && (r = nft_cmd(l->nft, script, NULL, err, errlen)) < 0)
		close_ctx(l);
	if (r < 0)
		return r;
	snprintf(l->table, sizeof(l->table), "%s", name);
	l->locked_mono_ns = t0;
	return 0;
}

int netlock_take(struct netlock *l)
{
	char err[512] = "";
	if (!l->n)
		return 0;
	int r = install(l, "stasis-", false, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "cannot lock the network of %zu TCP connection(s) with nftables (%s): %m; "
				       "is nf_tables available and are we root?", l->n, err);
	if (!l->locked_real_ns)
		l->locked_real_ns = clock_ns(CLOCK_REALTIME);
	log_info("network locked: %zu TCP connection(s) in nftables table inet %s", l->n, l->table);
	return 0;
}

/* In our own network namespace, for a container's: see netlock.h. */
int netlock_take_outer(struct netlock *l)
{
	char err[512] = "";
	if (!l->n)
		return 0;
	l->ns_pid = 0;
	int r = install(l, "stasis-outer-", true, err, sizeof(err));
	if (r < 0)
		return log_warn_errno(r, "cannot lock the %zu TCP connection(s) on the host's side (nftables: %s): %m; "
				      "a peer that sends before the restore took them may get a reset", l->n, err);
	l->outer = true;
	log_info("network locked on the host's side: %zu TCP connection(s) in nftables tables inet and bridge %s",
		 l->n, l->table);
	return 0;
}

int netlock_remove(pid_t ns_pid, const char *table)
{
	char script[NETLOCK_NAME_MAX + 32], err[512] = "";
	snprintf(script, sizeof(script), "delete table inet %s\n", table);
	int r = nft_run_in(ns_pid, script, err, sizeof(err));
	return r == -ENOENT ? 0 : r;
}

static void log_stats(const struct netlock *l, const char *what)
{
	uint64_t held = clock_ns(CLOCK_MONOTONIC) - l->locked_mono_ns;
	int64_t since = (int64_t)(clock_ns(CLOCK_REALTIME) - l->locked_real_ns);
	log_info("stats: netlock %s conns=%zu held_ms=%.3f blocked_ms=%.3f", what, l->n, held / 1e6, since / 1e6);
}

int netlock_release(struct netlock *l)
{
	int r = 0, e;
	if (!l || (!l->table[0] && !l->image_table[0]))
		return 0;
	if (l->table[0]) {
		char script[2 * NETLOCK_NAME_MAX + 64], err[512] = "";
		int k = snprintf(script, sizeof(script), "delete table inet %s\n", l->table);
		if (l->outer) /* one transaction: both go, or neither */
			snprintf(script + k, sizeof(script) - (size_t)k, "delete table bridge %s\n", l->table);
		if ((r = nft_cmd(l->nft, script, NULL, err, sizeof(err))) < 0)
			log_warn_errno(r, "cannot remove the network lock (nftables table inet %s: %s): %m; it goes "
				       "with our netlink socket", l->table, err);
		r = 0;
		close_ctx(l);
	}
	if (l->image_table[0] && (e = netlock_remove(l->ns_pid, l->image_table)) < 0) {
		log_error_errno(e, "cannot remove the dump's network lock (nftables table inet %s): %m; remove it "
			       "with 'nft delete table inet %s'", l->image_table, l->image_table);
		r = r < 0 ? r : e;
	}
	log_stats(l, "released");
	l->table[0] = l->image_table[0] = 0;
	return r;
}

int netlock_hand_over(struct netlock *l)
{
	char name[NETLOCK_NAME_MAX], err[512] = "";
	struct strbuf b = { 0 };
	if (!l->table[0])
		return 0;
	netlock_image_name(name, sizeof(name));
	add_table(&b, name, l->conns, l->n, false);
	sb_add(&b, "delete table inet %s\n", l->table);
	int r = b.err ? b.err : nft_cmd(l->nft, b.s, NULL, err, sizeof(err));
	free(b.s);
	if (r >= 0)
		close_ctx(l);
	if (r < 0)
		return log_error_errno(r, "cannot hand the network lock over to the image (%s): %m", err);
	log_info("network lock kept for the restore: nftables table inet %s", name);
	log_stats(l, "handed-over");
	l->table[0] = 0;
	snprintf(l->image_table, sizeof(l->image_table), "%s", name);
	return 0;
}

/* --- stale tables --- */

/* "stasis-PID-START" whose process is gone (or is another by now). */
static bool stale(const char *name)
{
	int pid;
	uint64_t start, now;
	int used = 0;
	if (sscanf(name, "stasis-%d-%" SCNu64 "%n", &pid, &start, &used) != 2 || name[used] || pid <= 0)
		return false;
	if (pid == getpid())
		return false;
	return start_time(pid, &now) < 0 || now != start;
}

void netlock_sweep(void)
{
	_cleanup_free_ char *out = NULL;
	char err[512], line[256];
	size_t pos = 0;
	if (nft_run("list tables inet\n", &out, err, sizeof(err)) < 0)
		return; /* no nftables for us here: nothing of ours either */
	for (const char *p = out; *p; p += pos) {
		pos = strcspn(p, "\n");
		char name[NETLOCK_NAME_MAX + 1];
		snprintf(line, sizeof(line), "%.*s", (int)pos, p);
		pos += p[pos] == '\n';
		if (sscanf(line, "table inet %64s", name) != 1 || !stale(name))
			continue;
		int r = netlock_remove(0, name);
		if (r < 0)
			log_warn_errno(r, "cannot remove the stale network lock table inet %s: %m", name);
		else
			log_info("removed the network lock table inet %s of a stasis that died", name);
	}
}
