/* Re-exec: what the State handed to the new image keeps of the pool and of
 * the listening sockets (pool-state.c), and how the new image takes it
 * back. Pure bookkeeping like pool.c: the manager records and restores its
 * own fields, and adopts each worker the State lists (that needs its loop). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/pool.h"
#include "sockherd/state.h"

/* Append the sockets, the slots (with their own sockets) and every worker,
 * serving and retiring (with what it drains), to s. 0 or -ENOMEM. */
int pool_state_record(const Pool *pool, const ListenSet *sockets, State *s);

/* Give pool the recorded size (the pool may have been scaled), and each
 * slot its restarts, backoff, lane and own sockets (CLOEXEC again; one for
 * a socket index beyond n_sockets is closed). Slots without a config get
 * config at generation. No worker is touched. 0 or -ENOMEM. */
int pool_state_restore_slots(Pool *pool, size_t n_sockets, Config *config, uint64_t generation, const State *s);

/* The sockets a retiring worker was draining before the re-exec: its own
 * again, CLOEXEC again, and taken (fd -1) from s. */
void pool_state_take_drain_sockets(const State *s, Worker *w);
