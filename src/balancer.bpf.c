// SPDX-License-Identifier: MIT OR GPL-2.0
/* balance = least-connections, in the kernel (see include/sockherd/balancer.h).
 *
 * Two programs share four maps:
 *
 * choose_lane (BPF_PROG_TYPE_SK_REUSEPORT) runs for every new connection
 * to the address, when the kernel looks up a listener for its SYN. It
 * gives the connection to the serving lane (one worker's socket) with the
 * fewest live connections, ties going round-robin; when no lane serves
 * (every worker starting or restarting) to the standby lane with the
 * fewest; a lane that is neither gets nothing. It counts the connection on
 * that lane at once, so a burst of SYNs arriving together spreads evenly,
 * and remembers which lane it chose under the connection's key (the
 * kernel's hash of its 4-tuple, the peer's port, our port).
 *
 * count_close (raw tracepoint inet_sock_set_state) runs on every TCP state
 * change on the host and returns at once unless the socket is on our port.
 * When one of our connections leaves ESTABLISHED (the worker closed it,
 * the peer closed it, or it was reset), the entry is deleted and its lane
 * counted down. Whoever deletes an entry (this program, choose_lane for a
 * retried SYN, or the manager expiring a handshake that never completed)
 * counts it down, and only the one whose delete succeeded: the kernel
 * serialises deletes of one key, so no close is counted twice.
 *
 * The same hash: the kernel computes the reuseport hash of a SYN with
 * inet_ehashfn()/inet6_ehashfn() over (local address, local port, peer
 * address, peer port), and stores the same function of the same values in
 * the connection's sock_common.skc_hash when it hashes it into the
 * established table; so the SYN and the socket it becomes have one key. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sockherd/balancer-maps.h"

struct {
        __uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
        __uint(max_entries, BALANCER_LANES_MAX);
        __type(key, __u32);
        __type(value, __u64);
} lane_sockets SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, BALANCER_LANES_MAX);
        __uint(map_flags, BPF_F_MMAPABLE);
        __type(key, __u32);
        __type(value, struct balancer_lane);
} lanes SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 1);
        __uint(map_flags, BPF_F_MMAPABLE);
        __type(key, __u32);
        __type(value, struct balancer_chooser);
} chooser SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, BALANCER_CONNECTIONS_MAX);
        __type(key, struct balancer_conn_key);
        __type(value, struct balancer_conn);
} conns SEC(".maps");

/* the listening port this instance balances, host order; set at load */
const volatile __u16 balanced_port = 0;

#define LANE(i) ((i) & (BALANCER_LANES_MAX - 1))

static void lane_count(__u32 lane, int delta) {
        struct balancer_lane *l = bpf_map_lookup_elem(&lanes, &(__u32) { LANE(lane) });
        if (l)
                __sync_fetch_and_add(&l->live, delta);
}

/* Forget a connection; count it down if this call is the one that removed it. */
static void conn_forget(struct balancer_conn_key *key) {
        struct balancer_conn *c = bpf_map_lookup_elem(&conns, key);
        if (!c)
                return;
        __u32 lane = c->lane;
        if (bpf_map_delete_elem(&conns, key) == 0)
                lane_count(lane, -1);
}

struct scan {
        __u32 n, start, state;
        __u32 best, best_live;
};

static long scan_lane(__u32 k, void *data) {
        struct scan *s = data;
        __u32 i = s->start + k;
        if (i >= s->n)
                i -= s->n;
        struct balancer_lane *l = bpf_map_lookup_elem(&lanes, &(__u32) { LANE(i) });
        if (!l || l->state != s->state)
                return 0;
        __u32 live = l->live;
        if (live < s->best_live) {
                s->best_live = live;
                s->best = i;
        }
        return 0;
}

/* The lane in the given state with the fewest connections, scanning from
 * the cursor so that ties go round-robin; BALANCER_LANES_MAX if none. */
static __u32 least_lane(__u32 n, __u32 start, __u32 state) {
        struct scan s = { .n = n, .start = start, .state = state, .best = BALANCER_LANES_MAX,
                          .best_live = 0xffffffff };
        bpf_loop(n, scan_lane, &s, 0);
        return s.best;
}

static int conn_key_of_syn(struct sk_reuseport_md *ctx, struct balancer_conn_key *key) {
        __u16 ports[2]; /* the TCP header: source (the peer's) and destination port */
        if (bpf_skb_load_bytes(ctx, 0, ports, sizeof(ports)) < 0)
                return -1;
        key->hash = ctx->hash;
        key->peer_port = bpf_ntohs(ports[0]);
        key->port = bpf_ntohs(ports[1]);
        return 0;
}

SEC("sk_reuseport")
int choose_lane(struct sk_reuseport_md *ctx) {
        struct balancer_chooser *ch = bpf_map_lookup_elem(&chooser, &(__u32) { 0 });
        struct balancer_conn_key key = {};
        __u32 lane = BALANCER_LANES_MAX;

        if (!ch)
                return SK_PASS;
        __u32 n = ch->n_lanes;
        if (n == 0 || n > BALANCER_LANES_MAX)
                return SK_PASS;
        if (conn_key_of_syn(ctx, &key) == 0)
                conn_forget(&key); /* a SYN retried after the last one's choice */

        /* Optimistic: count the connection on the lane chosen, then claim
         * the choice with a compare-and-swap on seq. If another CPU chose
         * in between, give the count back and choose again, now seeing
         * its count; so concurrent SYNs cannot all pick one lane. */
        for (int attempt = 0; attempt < 4; attempt++) {
                __u64 ticket = ch->seq;
                __u32 start = ch->cursor < n ? ch->cursor : 0;
                lane = least_lane(n, start, BALANCER_LANE_SERVING);
                if (lane >= BALANCER_LANES_MAX) {
                        lane = least_lane(n, start, BALANCER_LANE_STANDBY);
                        if (lane >= BALANCER_LANES_MAX) {
                                __sync_fetch_and_add(&ch->unplaced, 1);
                                return SK_PASS;
                        }
                }
                lane_count(lane, 1);
                if (__sync_val_compare_and_swap(&ch->seq, ticket, ticket + 1) == ticket || attempt == 3)
                        break;
                lane_count(lane, -1);
        }
        ch->cursor = lane + 1 < n ? lane + 1 : 0;

        __u32 index = LANE(lane);
        if (bpf_sk_select_reuseport(ctx, &lane_sockets, &index, 0) < 0) {
                lane_count(lane, -1);
                __sync_fetch_and_add(&ch->unplaced, 1);
                return SK_PASS;
        }
        struct balancer_conn c = { .lane = LANE(lane), .born_ns = bpf_ktime_get_coarse_ns() };
        if (key.port == 0 || bpf_map_update_elem(&conns, &key, &c, BPF_NOEXIST) < 0) {
                /* not tracked, so not counted: its close could not count it down */
                lane_count(lane, -1);
                __sync_fetch_and_add(&ch->untracked, 1);
        }
        return SK_PASS;
}

/* The head of the kernel's struct sock_common, the same in every kernel
 * since 3.x: the address pair, the hash, the port pair, the family. */
struct sock_common_head {
        __u32 daddr, rcv_saddr;
        __u32 hash;
        __u16 dport; /* the peer's port, network order */
        __u16 num;   /* our port, host order */
        __u16 family;
};

enum { TCP_ESTABLISHED = 1, TCP_SYN_RECV = 3, TCP_CLOSE = 7 };

SEC("raw_tp/inet_sock_set_state")
int count_close(struct bpf_raw_tracepoint_args *ctx) {
        int oldstate = (int) ctx->args[1], newstate = (int) ctx->args[2];
        struct sock_common_head h;

        if (oldstate != TCP_ESTABLISHED && oldstate != TCP_SYN_RECV)
                return 0;
        if (bpf_probe_read_kernel(&h, sizeof(h), (void *) ctx->args[0]) < 0)
                return 0;
        /* A socket going to CLOSE (a reset, or a close with unread data)
         * has released its port before the state changes: tcp_set_state()
         * unhashes it and inet_put_port() zeroes skc_num first. Its hash
         * and the peer's port are still there, and the hash covers our
         * port too, so look it up under ours. */
        if (h.num != balanced_port && !(h.num == 0 && newstate == TCP_CLOSE))
                return 0;
        struct balancer_conn_key key = { .hash = h.hash, .peer_port = bpf_ntohs(h.dport), .port = balanced_port };
        if (newstate == TCP_ESTABLISHED) {
                struct balancer_conn *c = bpf_map_lookup_elem(&conns, &key);
                if (c)
                        c->established = 1;
                return 0;
        }
        conn_forget(&key);
        return 0;
}

/* GPL-compatible: bpf_probe_read_kernel() is a GPL-only helper */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
