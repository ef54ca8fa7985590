/* balance = reuseport: one listening socket per worker slot, all in one
 * SO_REUSEPORT group with the original socket, so the kernel spreads new
 * connections evenly instead of waking the busiest worker first.
 *
 * Slot 0 serves on the original socket itself; slot i > 0 on a sibling
 * bound to the same address with the same options. The group's index of a
 * socket is its bind order, so slot i is index i as long as slots are only
 * added and removed at the top. A classic BPF program attached to the
 * group picks index (random % n), which is how sockherd steers new
 * connections away from a slot it is about to remove (no connection queued
 * on a socket that closes is lost), and away from slots a reload has not
 * committed yet. The manager owns every sibling for the life of its slot:
 * a worker crash, recycle or reload replaces the worker, not the socket. */
#pragma once

#include <stdbool.h>

#include "sockherd/listen-queue.h" /* listen_queue(), for the slots' queues */

/* Is fd a TCP listening socket (the kind reuseport balances)? */
bool reuseport_applies(int fd);

/* Whether SO_REUSEPORT is set on fd: 1, 0, or -errno. */
int reuseport_enabled(int fd);

/* Create and bind a sibling of base (same family, address, v6-only flag,
 * backlog). -EADDRINUSE typically means the base lacks SO_REUSEPORT or is
 * owned by another uid. */
int reuseport_sibling(int base, unsigned backlog);

/* Steer new connections of fd's group to indexes 0..n-1. */
int reuseport_steer(int fd, unsigned n);
