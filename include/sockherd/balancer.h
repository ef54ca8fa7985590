/* balance = least-connections: the kernel gives each new connection to the
 * worker with the fewest live connections (see src/balancer.bpf.c for the
 * programs, balancer-maps.h for what they share with the manager).
 *
 * One Balancer per TCP listening address. Its lanes are the sockets of the
 * address's reuseport group that may take connections; slot i's socket is
 * lane i. The manager says which lanes serve (their worker is ready),
 * which stand by (a kept socket whose worker is starting or restarting:
 * used only when no lane serves) and which are closed (going away, or not
 * committed yet); the kernel does the rest, with no process in the path.
 *
 * How exact the counts are: a connection is counted on its lane when its
 * SYN is placed and counted down when it leaves ESTABLISHED (closed by
 * either side, or reset), both in the kernel, so a choice sees every close
 * that happened before it. What can be off:
 *  - a handshake that never completes (a SYN flood, a client that gave up)
 *    stays counted until balancer_expire() drops it: at most the kernel's
 *    SYN-ACK retry time (63 s with tcp_synack_retries = 5) plus the expiry
 *    interval; such SYNs are themselves spread evenly, so the error is the
 *    same on every lane;
 *  - beyond BALANCER_CONNECTIONS_MAX live connections per address new ones
 *    are placed but not counted (balancer_stats(): untracked);
 *  - connections queued when the manager was restarted from the fd store
 *    (not re-executed) were counted by the old programs; the new ones
 *    start from zero and never count those down: the error is at most what
 *    was queued then, and ends with those connections.
 * Two SYNs placed on two CPUs at the same moment see each other's count
 * (a compare-and-swap retry), so a burst spreads evenly. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sockherd/balancer-maps.h"

typedef struct Balancer Balancer;

/* The descriptors that keep a Balancer alive across a re-exec. */
typedef struct BalancerFds {
        int program;  /* the sk_reuseport program (attached to the group) */
        int link;     /* the raw tracepoint that counts closes */
        int lanes, chooser, conns, sockets;
} BalancerFds;
#define BALANCER_FDS_N 6

/* Load and verify the programs for connections to this TCP port and start
 * counting closes. Needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or root):
 * do it before dropping root. -EPERM: not allowed here; -EINVAL, -ENOSYS,
 * -EOPNOTSUPP: the kernel lacks what it needs (5.17 or newer). */
int balancer_load(uint16_t port, Balancer **ret);

/* Take over a Balancer from its descriptors (after a re-exec): nothing is
 * loaded or attached again, so no connection is placed differently. */
int balancer_adopt(const BalancerFds *fds, Balancer **ret);

/* The descriptors balancer_adopt() takes (still owned by b). */
void balancer_fds(const Balancer *b, BalancerFds *ret);

/* Put fd in lane i (fd < 0: take whatever is there out). -EBUSY: fd is in
 * a lane already (see balancer_find_socket()). */
int balancer_set_socket(Balancer *b, unsigned lane, int fd);

/* The lane fd is in, or -ENOENT. */
int balancer_find_socket(const Balancer *b, int fd);


/* BALANCER_LANE_SERVING, _STANDBY or _CLOSED. */
void balancer_set_state(Balancer *b, unsigned lane, unsigned state);

/* Lanes 0..n-1 are considered; the rest take nothing. */
void balancer_set_lanes(Balancer *b, unsigned n);

/* Make the programs choose for the reuseport group of group_fd. */
int balancer_attach(Balancer *b, int group_fd);

unsigned balancer_live(const Balancer *b, unsigned lane);

/* Forget handshakes placed more than max_age_usec ago that never completed.
 * Returns how many. */
unsigned balancer_expire(Balancer *b, uint64_t max_age_usec);

void balancer_stats(const Balancer *b, uint64_t *ret_unplaced, uint64_t *ret_untracked);

/* How long a handshake can stay incomplete on this host, from
 * net.ipv4.tcp_synack_retries (what balancer_expire() should be given). */
uint64_t balancer_handshake_max_usec(void);

Balancer *balancer_free(Balancer *b);
static inline void balancer_freep(Balancer **b) {
        balancer_free(*b);
}
