/* Listening sockets in (see listen.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "sockherd/listen.h"
#include "sockherd/util.h"

static int listen_set_add(ListenSet *set, int fd, const char *name) {
        char *copy = strdup(name);
        if (!copy || ARRAY_APPEND(set->sockets, set->n, (ListenSocket) { .fd = fd, .name = copy }) < 0) {
                free(copy);
                return -ENOMEM;
        }
        return 0;
}

int listen_set_take_passed(ListenSet *set) {
        _cleanup_strv_free_ char **names = NULL;

        int n = sd_listen_fds_with_names(/* unset_environment= */ 1, &names);
        if (n <= 0)
                return n;

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                /* sd_listen_fds() already set CLOEXEC on each of them */
                int r = listen_set_add(set, fd, names && names[i] ? names[i] : "unknown");
                if (r < 0)
                        return r;
        }
        set->passed_in = true;
        return n;
}

int listen_set_adopt(ListenSet *set, int fd, const char *name) {
        return listen_set_add(set, fd, name);
}

int listen_set_move(ListenSet *from, ListenSet *to, bool (*pred)(const char *name)) {
        for (size_t i = 0; i < from->n;) {
                if (!pred(from->sockets[i].name)) {
                        i++;
                        continue;
                }
                if (ARRAY_APPEND(to->sockets, to->n, from->sockets[i]) < 0)
                        return -ENOMEM;
                memmove(from->sockets + i, from->sockets + i + 1, (from->n - i - 1) * sizeof(ListenSocket));
                from->n--;
        }
        to->passed_in = from->passed_in;
        return 0;
}

int listen_set_take_named(ListenSet *set, const char *name) {
        for (size_t i = 0; i < set->n; i++) {
                if (strcmp(set->sockets[i].name, name) != 0)
                        continue;
                int fd = set->sockets[i].fd;
                free(set->sockets[i].name);
                free(set->sockets[i].unlink_path);
                memmove(set->sockets + i, set->sockets + i + 1, (set->n - i - 1) * sizeof(ListenSocket));
                set->n--;
                return fd;
        }
        return -1;
}

/* A unix socket file left behind by a previous run is replaced only if
 * nothing accepts on it any more; anything else at that path is kept. */
int listen_unix_path_prepare(const ListenAddress *a) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) &a->sa;
        socklen_t len = a->sa_len;
        struct stat st;

        if (lstat(un->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return -errno;
        if (connect(probe, (const struct sockaddr *) un, len) == 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED)
                return -errno;
        if (unlink(un->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int tcp_socket(const ListenAddress *a, struct sockaddr_storage *sa, socklen_t *sa_len, bool reuseport) {
        int one = 1, zero = 0;
        int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 && a->kind == LISTEN_TCP_ANY && errno == EAFNOSUPPORT) {
                /* no IPv6 on this host: all addresses means 0.0.0.0 */
                struct sockaddr_in *in = (struct sockaddr_in *) sa;
                memset(sa, 0, sizeof(*sa));
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(INADDR_ANY);
                in->sin_port = htons((uint16_t) a->port);
                *sa_len = sizeof(*in);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return -errno;

        /* a restart must never fail on connections in TIME_WAIT */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
            (a->kind == LISTEN_TCP_ANY && sa->ss_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int listen_set_bind(ListenSet *set, const ListenAddress *a, unsigned backlog, bool reuseport) {
        struct sockaddr_storage sa = a->sa;
        socklen_t sa_len = a->sa_len;
        _cleanup_close_ int fd = -1;
        int r;

        if (a->kind == LISTEN_UNIX_PATH || a->kind == LISTEN_UNIX_ABSTRACT) {
                if (a->kind == LISTEN_UNIX_PATH) {
                        r = listen_unix_path_prepare(a);
                        if (r < 0)
                                return r;
                }
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
        } else {
                fd = tcp_socket(a, &sa, &sa_len, reuseport);
                if (fd < 0)
                        return fd;
        }

        if (bind(fd, (struct sockaddr *) &sa, sa_len) < 0)
                return -errno;
        if (listen(fd, (int) backlog) < 0)
                return -errno;

        r = listen_set_add(set, fd, LISTEN_DEFAULT_NAME);
        if (r < 0)
                return r;
        ListenSocket *s = &set->sockets[set->n - 1];
        TAKE_FD(fd);

        if (a->kind == LISTEN_UNIX_PATH) {
                const char *path = ((const struct sockaddr_un *) &sa)->sun_path;
                struct stat st;
                if (stat(path, &st) == 0) {
                        s->unlink_path = strdup(path);
                        s->dev = st.st_dev;
                        s->ino = st.st_ino;
                }
        }
        return 0;
}

void listen_set_clear(ListenSet *set) {
        for (size_t i = 0; i < set->n; i++) {
                ListenSocket *s = &set->sockets[i];
                struct stat st;
                /* remove the file only if it is still the one we bound */
                if (s->unlink_path && stat(s->unlink_path, &st) == 0 &&
                    st.st_dev == s->dev && st.st_ino == s->ino)
                        (void) unlink(s->unlink_path);
                safe_close(s->fd);
                free(s->name);
                free(s->unlink_path);
        }
        free(set->sockets);
        *set = (ListenSet) {};
}

char *listen_set_names(const ListenSet *set) {
        size_t len = 1;
        for (size_t i = 0; i < set->n; i++)
                len += strlen(set->sockets[i].name) + 1;
        char *s = malloc(len), *p = s;
        if (!s)
                return NULL;
        *p = '\0';
        for (size_t i = 0; i < set->n; i++) {
                if (i > 0)
                        *p++ = ':';
                p = stpcpy(p, set->sockets[i].name);
        }
        return s;
}
