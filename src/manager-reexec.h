/* Re-exec's side of the manager (manager-reexec.c): one object that checks,
 * probes and executes the program on disk, handing it the state the
 * manager records of itself (manager_state_record()), through
 * manager-view.h. */
#pragma once

#include "sockherd/error.h"

typedef struct Manager Manager;
typedef struct ManagerReexec ManagerReexec;

/* argv: our command line, borrowed (kept by main until exit). */
ManagerReexec *manager_reexec_new(Manager *m, char **argv);
ManagerReexec *manager_reexec_free(ManagerReexec *x);
/* Can a re-exec go ahead now? On refusal, why says why. */
int manager_reexec_check(ManagerReexec *x, ErrorText *why);
/* Run the program on disk as it will be re-executed (--state-version, then
 * --check-config with our arguments), each for at most a few seconds and
 * synchronously; refuse, saying why, unless it runs, reads our state
 * version and accepts the configuration. */
int manager_reexec_probe(ManagerReexec *x, ErrorText *why);
/* Check and probe now, and execute from the loop (the caller answers its
 * client first); 0, or refused with why. */
int manager_reexec_request(ManagerReexec *x, ErrorText *why);
/* Write the state and exec; returns only on failure (logged). */
int manager_reexec(ManagerReexec *x);
