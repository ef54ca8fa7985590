/* An LD_PRELOAD shim for test_control: it plays the owner of a control
 * socket's directory who wins the race between bind() and the ownership
 * change. When bind() has created the unix socket at $BINDSWAP_PATH, the
 * socket is renamed away and a symlink to $BINDSWAP_TARGET takes its
 * place. sockherd must not change the target's group or mode through it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int bind(int fd, const struct sockaddr *sa, socklen_t len) {
        int (*real_bind)(int, const struct sockaddr *, socklen_t) =
                (int (*)(int, const struct sockaddr *, socklen_t)) dlsym(RTLD_NEXT, "bind");
        int r = real_bind(fd, sa, len);
        const char *path = getenv("BINDSWAP_PATH"), *target = getenv("BINDSWAP_TARGET");
        const struct sockaddr_un *un = (const struct sockaddr_un *) sa;

        if (r == 0 && path && target && sa->sa_family == AF_UNIX && strcmp(un->sun_path, path) == 0) {
                char moved[sizeof(un->sun_path) + 8];
                snprintf(moved, sizeof(moved), "%s.real", path);
                if (rename(path, moved) < 0 || symlink(target, path) < 0)
                        abort();
        }
        return r;
}
