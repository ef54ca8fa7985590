/* The manager's own privileges. Started as root to bind ports and switch
 * workers to `user =`, the manager drops to that user once its sockets are
 * open, so nothing it parses afterwards (worker notify datagrams, control
 * requests, config reloads) runs as root. It keeps root only where it still
 * needs it later; privileges_keep_reason() says where. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "sockherd/config.h"

/* NULL when a manager running as euid may drop to the workers' user now,
 * else why it keeps its credentials. Pure. */
const char *privileges_keep_reason(const Config *c, Balance balance, uid_t euid);

/* Switch to the workers' supplementary groups, gid and uid for good (real,
 * effective and saved), and check that root cannot come back. */
int privileges_drop(const Config *c);
