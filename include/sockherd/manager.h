/* The manager owns the sd-event loop and wires every event source (child
 * exits, notify datagrams, timers, signals) to the pure modules, then
 * carries out what they decide: fork, kill, arm a timer, sd_notify. */
#pragma once

#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/state.h"

typedef struct Manager Manager;

/* Takes over the source's contents, a reference to the config, the
 * sockets and control_fd (a passed-in control socket, or -1) on success.
 * state: after a re-exec, what the previous image handed over (its notify
 * socket, workers); NULL otherwise. argv is kept for a later re-exec. */
int manager_new(ConfigSource *source, Config *config, ListenSet *sockets, int control_fd,
                const State *state, char **argv, Manager **ret);
Manager *manager_free(Manager *m);

/* balance=reuseport slot sockets that came back from the fd store. */
void manager_adopt_stored_slots(Manager *m, ListenSet *stored);

/* After a re-exec: take over the workers the state describes. */
int manager_restore(Manager *m, const State *state);

/* Start the workers and run until the pool was stopped; returns the
 * process exit code (0 for a clean stop) or a negative errno. */
int manager_run(Manager *m);

/* At start (not after a re-exec), as root, before root is dropped: choose
 * the balancing mode in effect and load what it needs. 0, or an exit code
 * after logging why the pool cannot run like this. */
int manager_choose_balance(Manager *m);
/* The balancing mode in effect (never BALANCE_AUTO). */
Balance manager_balance_in_effect(const Manager *m);
