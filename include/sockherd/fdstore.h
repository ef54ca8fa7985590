/* Keeping the sockets sockherd binds itself in systemd's fd store, so that
 * `systemctl restart` or a crash with Restart=on-failure never refuses a
 * connection even without a .socket unit. Each stored socket is named from
 * its canonical address, so the next start finds it again by name; a
 * stored socket that the config no longer lists is removed. Sockets that
 * came from a .socket unit are never stored: systemd holds them already
 * and would pass them twice. */
#pragma once

#include <stdbool.h>

#include "sockherd/address.h"

#define FDSTORE_PREFIX "sockherd-listen/"
#define FDSTORE_NAME_MAX 256

/* "sockherd-listen/127.0.0.1_8080" for 127.0.0.1:8080 (fd names may not
 * hold ':'). Pure. */
const char *fdstore_name(const ListenAddress *a, char buf[static FDSTORE_NAME_MAX]);
bool fdstore_name_is_ours(const char *name);

/* Both are no-ops without $NOTIFY_SOCKET. Return 1 when sent, 0 when
 * there is nobody to send to, or a negative errno. */
int fdstore_store(int fd, const char *name);
int fdstore_remove(const char *name);
