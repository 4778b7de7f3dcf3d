/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network lock (--tcp-established): from the freeze until the
 * restored tree runs, packets of the tree's TCP connections are dropped
 * silently, so that peers retransmit instead of getting resets from a
 * host where the socket is half-saved or not there yet.
 *
 * The lock is an nftables table of our own (libnftables), in the network
 * namespace of the tree: two sets of 4-tuples (IPv4, IPv6), and chains on
 * the input and output hooks that drop what matches, in both directions.
 *
 * Table names say who owns them, so that nothing of ours outlives us:
 *   stasis-PID-START        held by the stasis process PID (START: its
 *                           start time in /proc/PID/stat), made with
 *                           "flags owner": the kernel removes it with our
 *                           netlink socket, whenever we die. Also removed
 *                           on release, by the dump's guardian if the
 *                           dumper dies, and by netlock_sweep() at the
 *                           next run once that process is gone (a table
 *                           made some other way: belt and braces).
 *   stasis-outer-PID-START  held by the stasis process PID in its own
 *                           namespace while it restores a container, in
 *                           the families inet and bridge, "flags owner"
 *                           too (netlock_take_outer).
 *   stasis-image-PID-START  the lock a completed dump hands over to its
 *                           image (the tree is gone, its sockets are in
 *                           the image); named in the manifest and removed
 *                           by the restore that brings them back. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/json.h"

struct nft_ctx;

#define NETLOCK_NAME_MAX 64
#define NETLOCK_MAX_CONNS 65536
/* Packets with this mark (SO_MARK) pass the lock: the segments restore
 * itself sends to a restored socket (sk-tcp-fin.h), never the peer's. */
#define NETLOCK_PASS_MARK 0x57a5f1e0u

/* One TCP connection: local and remote ends as the tree sees them (after
 * netlock_take, either way round: it keeps mirrored pairs once). An
 * IPv4 connection on an IPv6 socket (::ffff:a.b.c.d) is given as IPv4,
 * which is what is on the wire. */
struct netlock_conn {
	int family; /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* host order */
};

struct netlock {
	char table[NETLOCK_NAME_MAX]; /* held: our table; "" when not */
	char image_table[NETLOCK_NAME_MAX]; /* restore: the dump's, to remove */
	pid_t ns_pid; /* whose network namespace the table is in (0: ours) */
	struct netlock_conn *conns;
	size_t n;
	uint64_t locked_mono_ns; /* CLOCK_MONOTONIC when taken */
	uint64_t locked_real_ns; /* CLOCK_REALTIME when the first lock was taken (the dump's) */
	struct nft_ctx *nft; /* held: the netlink socket our table lives by ("flags owner") */
	bool outer;          /* held: netlock_take_outer's (a bridge table too) */
};

/* The TCP connections (with a peer: established or closing) of the
 * processes pids, as their network namespace (pids[0]'s) shows them. */
int netlock_find(const pid_t *pids, size_t npids, struct netlock_conn **ret, size_t *ret_n);
/* Pure: parses /proc/net/tcp or tcp6 text; appends the connections whose
 * socket inode is in inos[] (sorted) to *v (grown). */
int netlock_parse_proc(const char *buf, size_t len, int family, const uint64_t *inos, size_t ninos,
		       struct netlock_conn **v, size_t *n);

/* Takes the lock on l->conns in ns_pid's network namespace: the table
 * stasis-OURPID-START. Nothing to lock (n == 0) takes nothing. Logs. */
int netlock_take(struct netlock *l);
/* Before a container is made for the restore (runtime/sandbox.c): the
 * image's connections locked in our own network namespace, the host's,
 * which carries the container's packets (inet input, output and forward,
 * and a bridge's forward hook): the tables inet and bridge
 * stasis-outer-OURPID-START, "flags owner". A new container has its
 * address, and answers a peer with resets, from before its runtime says
 * it started until the restore inside made the sockets; this covers it.
 * Best effort (warns): the restore inside locks its namespace anyway.
 * Released with netlock_release. */
int netlock_take_outer(struct netlock *l);
/* Removes our table (and, on a restore, the image's); logs the time the
 * connections were blocked ("stats: netlock ..." at -v). NULL-safe, and
 * does nothing when not held. */
int netlock_release(struct netlock *l);
/* A completed dump: the lock becomes the image's table (one nftables
 * transaction: no moment without it), whose name netlock_image_name gave. */
int netlock_hand_over(struct netlock *l);
void netlock_image_name(char *buf, size_t size);
/* The name netlock_take gives our table: stasis-OURPID-START. */
void netlock_own_name(char *buf, size_t size);
/* The guardian: removes a table by name; async-signal-unsafe but used in
 * a process of its own. Quiet when the table is not there. */
int netlock_remove(pid_t ns_pid, const char *table);
/* Removes the tables stasis-PID-START of our network namespace whose
 * owner is gone (a stasis killed by SIGKILL whose guardian could not, on
 * a table the kernel did not remove with its socket). Costs ~10 ms: the
 * runs with --tcp-established call it.
 * Quiet when nftables cannot be used (no privilege, no kernel support). */
void netlock_sweep(void);

/* The manifest's "netlock" object: what was locked (image table named
 * when handed over). from_json: absent gives n == 0; anything out of
 * range is -EBADMSG (image input is untrusted: it ends up in nftables
 * commands). */
void netlock_to_json(const struct netlock *l, bool handed_over, struct json_builder *body);
int netlock_from_json(const json_t *j, struct netlock *ret);
void netlock_free(struct netlock *l);

/* Pure, for tests: the nftables commands that make table name drop the
 * connections v[0..n). Returns a malloc'ed string, or NULL. */
char *netlock_script(const char *name, const struct netlock_conn *v, size_t n);
/* The same for netlock_take_outer: tables inet and bridge. */
char *netlock_outer_script(const char *name, const struct netlock_conn *v, size_t n);
