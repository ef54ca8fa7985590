/* Acquiring the listening sockets the pool serves: either passed in with
 * the LISTEN_FDS protocol (a .socket unit, systemd-socket-activate, the fd
 * store), or bound here from the configured addresses. The ListenSet owns
 * every fd in it; all are CLOEXEC, so a worker gets them only through the
 * spawn plan. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sockherd/address.h"

typedef struct ListenSocket {
        int fd;
        char *name;             /* for LISTEN_FDNAMES */
        char *unlink_path;      /* a unix socket file we created, removed at exit */
        dev_t dev;
        ino_t ino;
        unsigned backlog_taken;   /* the kernel's backlog when the manager took it, before any
                                   * worker ran (kept across a re-exec); 0: unknown (not TCP) */
        unsigned backlog_reported; /* the lowered backlog last logged; 0: none */
} ListenSocket;

typedef struct ListenSet {
        ListenSocket *sockets;
        size_t n;
        bool passed_in;
} ListenSet;

#define LISTEN_DEFAULT_NAME "listen"

/* Take the sockets passed with LISTEN_FDS (checking LISTEN_PID) and remove
 * the LISTEN_* variables from the environment. Returns how many (0 when
 * none were passed for this process). */
int listen_set_take_passed(ListenSet *set);

/* Take the first socket with this name out of the set (a passed-in control
 * socket is not for workers). Returns its fd, or -1 when there is none. */
int listen_set_take_named(ListenSet *set, const char *name);

/* Move the sockets whose name matches pred from one set to another. */
int listen_set_move(ListenSet *from, ListenSet *to, bool (*pred)(const char *name));

/* Take over fd (a socket from the fd store) under name. */
int listen_set_adopt(ListenSet *set, int fd, const char *name);

/* Bind one address and append the socket. For a unix path, a stale socket
 * file (nobody accepting) is replaced; a live one gives -EADDRINUSE and any
 * other kind of file -EEXIST. */
int listen_set_bind(ListenSet *set, const ListenAddress *a, unsigned backlog, bool reuseport);

/* Make way for binding a unix socket path: a stale socket file is removed,
 * a live one gives -EADDRINUSE, anything else at the path -EEXIST. */
int listen_unix_path_prepare(const ListenAddress *a);

/* Close everything, and remove socket files that are still ours. */
void listen_set_clear(ListenSet *set);

/* The names joined with ':' for LISTEN_FDNAMES. */
char *listen_set_names(const ListenSet *set);
