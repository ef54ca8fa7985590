/* Naming and sending fd store entries (see fdstore.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/fdstore.h"
#include "sockherd/systemd-notify.h"

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

        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
        return systemd_notify_with_fds(msg, &fd, 1);
}

int fdstore_remove(const char *name) {
        return systemd_notifyf("FDSTOREREMOVE=1\nFDNAME=%s", name);
}
