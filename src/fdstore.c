/* Naming and sending fd store entries (see fdstore.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "sockherd/fdstore.h"

const char *fdstore_name(const ListenAddress *a, char buf[static FDSTORE_NAME_MAX]) {
        char address[128];

        listen_address_format(a, address);
        snprintf(buf, FDSTORE_NAME_MAX, FDSTORE_PREFIX "%s", address);
        for (char *p = buf; *p; p++)
                if (*p == ':' || (unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '_';
        return buf;
}

bool fdstore_name_is_ours(const char *name) {
        return strncmp(name, FDSTORE_PREFIX, strlen(FDSTORE_PREFIX)) == 0;
}

int fdstore_store(int fd, const char *name) {
        char msg[FDSTORE_NAME_MAX + 32];

        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
        int r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
        return r < 0 ? r : 1;
}

int fdstore_remove(const char *name) {
        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        int r = sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
        return r < 0 ? r : 1;
}
