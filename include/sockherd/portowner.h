/* Who holds a TCP port: for the error a user sees first ("address already
 * in use"), name the process so they know what to stop. Reads /proc only;
 * finds nothing for processes in other namespaces or of other users when
 * /proc hides them. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "sockherd/address.h"

/* The pid and command name of a process with a socket listening on a's
 * port (and address, or any address). -ESRCH when none is visible. */
int port_owner(const ListenAddress *a, pid_t *ret_pid, char *ret_comm, size_t comm_size);
