/* How new connections reach the workers (manager-balance.c): one object
 * that owns the mode in effect, every slot's own sockets, the balancers
 * and their lanes. It is handed the manager's pool and listening sockets
 * and never sees the manager: the manager tells it what changed (a slot
 * added or gone, a worker switched or ready) and how many slots take new
 * connections. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/pool.h"
#include "sockherd/state.h"

typedef struct ManagerBalance ManagerBalance;

/* pool and sockets are the manager's and outlive the object. The mode is
 * shared until manager_balance_prepare() or _restore() says otherwise. */
ManagerBalance *manager_balance_new(sd_event *event, Pool *pool, ListenSet *sockets);
ManagerBalance *manager_balance_free(ManagerBalance *mb);

/* Per-slot sockets that came back from the fd store (taken over). */
void manager_balance_adopt_stored(ManagerBalance *mb, ListenSet *stored);

/* At start, as root: choose the mode in effect and, for least-connections,
 * load the programs. 0, or an exit code after saying what to do. */
int manager_balance_prepare(ManagerBalance *mb, const Config *config);
/* Then open every slot's sockets and attach; the first n_open slots take
 * new connections. 0, or an exit code after saying what to do. */
int manager_balance_setup(ManagerBalance *mb, unsigned backlog, unsigned n_open);

/* Re-exec: the mode and the balancers' descriptors, into the state... */
int manager_balance_record(const ManagerBalance *mb, State *s);
/* ...and back (the programs stay attached; nothing is loaded again).
 * configured: the config's balance=, for a state of an older writer. */
int manager_balance_restore(ManagerBalance *mb, const State *s, Balance configured);

/* The mode in effect (never BALANCE_AUTO), and why. */
Balance manager_balance_mode(const ManagerBalance *mb);
const char *manager_balance_reason(const ManagerBalance *mb);
const char *balance_to_string(Balance b);

/* Slot i > 0 gets its own sibling of each TCP socket (kept in the fd store). */
int manager_balance_slot_open(ManagerBalance *mb, unsigned slot, unsigned backlog);
/* The slot goes: its sockets go to heir (to drain) or are closed. */
void manager_balance_slot_release(ManagerBalance *mb, unsigned slot, Worker *heir);
/* Make the kernel's choice follow the pool, new connections going to slots
 * 0..n_open-1: call after any change of the slots or of a worker's
 * readiness. */
void manager_balance_steer(ManagerBalance *mb, unsigned n_open);

/* least-connections: open the sockets of its own for a worker that will
 * replace slot's worker (one per socket, -1 where none), closed to new
 * connections until it takes over; *ret_fds NULL when the mode does not
 * do this. */
int manager_balance_incoming_open(ManagerBalance *mb, unsigned slot, unsigned backlog, int **ret_fds);
/* w takes over its slot: its own sockets become the slot's; old gets the
 * slot's previous sockets to drain. True when the sockets changed: steer. */
bool manager_balance_slot_take_own(ManagerBalance *mb, unsigned slot, Worker *w, Worker *old);
/* Slot 0 took a socket of its own back from the fd store at start, so the
 * listening socket itself has no worker: true once, and the manager
 * replaces slot 0's worker onto it. */
bool manager_balance_take_orphaned(ManagerBalance *mb);

/* Connections queued on slot i's own sockets (slot 0's are the shared ones). */
unsigned manager_balance_slot_queue(const ManagerBalance *mb, unsigned i);
/* least-connections: live connections the balancer counts for slot i. */
unsigned manager_balance_slot_connections(const ManagerBalance *mb, unsigned i);
/* least-connections: connections no lane could take, and ones placed but
 * not counted, since the programs were loaded. */
void manager_balance_stats(const ManagerBalance *mb, uint64_t *ret_unplaced, uint64_t *ret_untracked);
/* The lowest backlog among socket j's listening sockets. */
int manager_balance_socket_backlog(const ManagerBalance *mb, size_t j, unsigned *ret);
/* Log (once per change) a listening socket whose backlog a worker lowered. */
void manager_balance_check_backlogs(ManagerBalance *mb);
