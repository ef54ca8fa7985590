/* The manager owns the sd-event loop and wires every event source (child
 * exits, notify datagrams, timers, signals) to the pure modules, then
 * carries out what they decide: fork, kill, arm a timer, sd_notify. */
#pragma once

#include "sockherd/config.h"
#include "sockherd/listen.h"

typedef struct Manager Manager;

/* Takes over the source's contents, a reference to the config, the
 * sockets and control_fd (a passed-in control socket, or -1) on success. */
int manager_new(ConfigSource *source, Config *config, ListenSet *sockets, int control_fd, Manager **ret);
Manager *manager_free(Manager *m);

/* Start the workers and run until the pool was stopped; returns the
 * process exit code (0 for a clean stop) or a negative errno. */
int manager_run(Manager *m);
