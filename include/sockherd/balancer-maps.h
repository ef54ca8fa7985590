/* The maps balancer.bpf.c shares with the manager (balancer.c): their
 * value layouts, included by both sides. Fixed-size types only. */
#pragma once

#include <linux/types.h>

/* Lanes: one listening socket of the address's reuseport group each, with
 * the live connections counted on it. Slot i's socket is lane i;
 * BALANCER_LANES_MAX is a power of two (the program masks indexes with it). */
#define BALANCER_LANES_MAX 2048u

/* connections tracked at once per address; beyond it, new connections are
 * still placed but not counted (chooser.untracked counts them) */
#define BALANCER_CONNECTIONS_MAX 262144u

enum {
        BALANCER_LANE_CLOSED = 0,  /* never chosen */
        BALANCER_LANE_STANDBY = 1, /* chosen only when no lane serves */
        BALANCER_LANE_SERVING = 2,
};

struct balancer_lane {
        __u32 live;  /* connections chosen for it and not yet closed */
        __u32 state; /* BALANCER_LANE_*, written by the manager */
};

struct balancer_chooser {
        __u64 seq;       /* bumped by each choice (the compare-and-swap ticket) */
        __u64 unplaced;  /* connections no lane could take (left to the kernel's hash) */
        __u64 untracked; /* connections placed but not counted (table full) */
        __u32 cursor;    /* where the next scan starts: ties go round-robin */
        __u32 n_lanes;   /* lanes 0..n_lanes-1 are scanned; written by the manager */
};

struct balancer_conn_key {
        __u32 hash;      /* the kernel's 4-tuple hash (ctx->hash = sk->skc_hash) */
        __u16 peer_port; /* host order */
        __u16 port;      /* ours, host order */
};

struct balancer_conn {
        __u32 lane;
        __u32 established; /* set when the handshake completed */
        __u64 born_ns;     /* CLOCK_MONOTONIC (coarse) when its SYN was placed */
};
