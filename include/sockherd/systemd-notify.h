/* Messages to systemd's $NOTIFY_SOCKET (READY=1, STATUS=, RELOADING=1,
 * WATCHDOG=1, FDSTORE=1 with descriptors): the one module that talks to it.
 *
 * sd_notify() opens a socket for every message; out of file descriptors
 * that fails, and READY=1, STATUS= and the watchdog pings would be lost, so
 * systemd would kill a manager that is only short of fds after
 * WatchdogSec=. One socket, opened at start (systemd_notify_open()),
 * carries every message instead; like sd_notify() it blocks while systemd's
 * queue is full rather than drop a READY=1. Addresses this does not handle
 * (vsock:, and anything malformed) go through sd_notify() itself. */
#pragma once

#include <stddef.h>

#include "sockherd/util.h"

/* Open the socket now, while descriptors are to be had. 0 also when there
 * is no $NOTIFY_SOCKET; a negative errno when the socket cannot be made
 * (later messages then use sd_notify()). */
int systemd_notify_open(void);
void systemd_notify_close(void);

/* 1 when sent, 0 without $NOTIFY_SOCKET, or a negative errno. */
int systemd_notify(const char *msg);
int systemd_notifyf(const char *fmt, ...) _printf_(1, 2);
/* With descriptors attached (FDSTORE=1). */
int systemd_notify_with_fds(const char *msg, const int *fds, size_t n_fds);
