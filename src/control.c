/* The control socket server (see control.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockherd/control.h"
#include "sockherd/event-util.h"
#include "sockherd/listen.h"
#include "sockherd/util.h"

struct ControlClient {
        ControlServer *server;
        int fd;
        uid_t uid;              /* the peer's, from SO_PEERCRED */
        pid_t pid;
        sd_event_source *io;
        sd_event_source *timeout; /* for the request, then for the reply */
        char in[CONTROL_REQUEST_MAX + 2];
        size_t in_size;
        char *out;
        size_t out_size;
        size_t out_done;
        bool handled;           /* the request went to the handler */
        bool on_reserve;        /* accepted into the server's reserved descriptor */
        ControlClient *next;
};

struct ControlServer {
        sd_event *event;
        int fd;
        uid_t owner;
        gid_t group;
        sd_event_source *accept_source;
        ControlHandlers handlers;
        void *userdata;
        ControlClient *clients;
        unsigned n_clients;
        /* Out of file descriptors (EMFILE), accept() fails and the socket
         * stays readable: level-triggered, that would spin. Instead one fd
         * is kept in reserve and given up to accept one client at a time
         * (the libuv trick), so `sockherdctl status` still answers while the
         * manager is out of descriptors; while that client is served, or
         * without a reserve, accepting pauses and is retried on a timer. */
        int reserve_fd;
        sd_event_source *retry_source;
        bool out_of_fds;        /* in an EMFILE episode (logged at start and end) */
};

#define CONTROL_ACCEPT_RETRY_USEC (500 * USEC_PER_MSEC)

static void server_event(ControlServer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void server_event(ControlServer *s, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        if (!s->handlers.event)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        s->handlers.event(msg, s->userdata);
}

/* Hold one descriptor for a client that arrives while the manager is out
 * of them. An eventfd: no path needed, nothing else refers to it. */
static void server_reserve_fill(ControlServer *s) {
        if (s->reserve_fd < 0)
                s->reserve_fd = eventfd(0, EFD_CLOEXEC);
}

static int on_accept_retry(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        ControlServer *s = userdata;
        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
        return 0;
}

/* Stop accepting for a while; the timer turns it back on. */
static void server_pause(ControlServer *s) {
        int r;

        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
        r = event_reset_time_relative(s->event, &s->retry_source, CONTROL_ACCEPT_RETRY_USEC, 10 * USEC_PER_MSEC,
                                      on_accept_retry, s);
        if (r < 0) /* no timer (out of memory): accept on every wake-up rather than never again */
                (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
}

/* The client that held the reserved descriptor is gone: take it back and
 * accept again at once. */
static void server_reserve_returned(ControlServer *s) {
        server_reserve_fill(s);
        if (s->retry_source)
                (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
}

static void client_free(ControlClient *c) {
        ControlServer *s = c->server;
        for (ControlClient **p = &s->clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        s->n_clients--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timeout);
        safe_close(c->fd);
        if (c->on_reserve)
                server_reserve_returned(s);
        free(c->out);
        free(c);
}

/* The client is going away; tell the manager if it held on to it. */
static void client_drop(ControlClient *c) {
        if (c->handled && !c->out && c->server->handlers.gone)
                c->server->handlers.gone(c, c->server->userdata);
        client_free(c);
}

/* A client that stops reading a reply bigger than the socket buffer would
 * hold its slot for ever: the reply must be read within a deadline. */
static int on_client_write_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        ControlClient *c = userdata;
        server_event(c->server, "control client (uid %u, pid %d) did not read its reply within %ds "
                     "(%zu of %zu bytes sent); closing it", (unsigned) c->uid, (int) c->pid,
                     CONTROL_WRITE_TIMEOUT_SEC, c->out_done, c->out_size);
        client_free(c);
        return 0;
}

static void client_flush(ControlClient *c) {
        while (c->out_done < c->out_size) {
                ssize_t n = send(c->fd, c->out + c->out_done, c->out_size - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                break; /* the client went away: nothing more to do */
                        (void) sd_event_source_set_io_events(c->io, EPOLLOUT);
                        /* the deadline counts from the first time the buffer is full */
                        if (c->timeout ||
                            sd_event_add_time_relative(c->server->event, &c->timeout, CLOCK_MONOTONIC,
                                                       CONTROL_WRITE_TIMEOUT_SEC * USEC_PER_SEC,
                                                       USEC_PER_MSEC * 10, on_client_write_timeout, c) >= 0)
                                return;
                        break; /* no timer (out of memory): no unbounded wait either */
                }
                c->out_done += (size_t) n;
        }
        client_free(c);
}

/* Read and drop what the client sent beyond its request (bounded), so that
 * closing does not reset the connection before it has read the reply. */
static void client_discard_input(ControlClient *c) {
        char scratch[4096];
        for (unsigned i = 0; i < 16; i++)
                if (recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
                        break;
}

void control_client_reply(ControlClient *c, ControlReply *reply) {
        client_discard_input(c);
        if (strbuf_error(&reply->text) < 0) {
                control_reply_done(reply);
                control_reply_init(reply, "out of memory");
        }
        /* NULL when even "out of memory" could not be written */
        if (strbuf_steal(&reply->text, &c->out, &c->out_size) < 0)
                c->out = NULL;
        *reply = (ControlReply) {};
        c->timeout = sd_event_source_disable_unref(c->timeout);
        if (!c->out) {
                client_free(c);
                return;
        }
        client_flush(c);
}

void control_client_reply_error(ControlClient *c, const char *error) {
        ControlReply r;
        control_reply_init(&r, error);
        control_client_reply(c, &r);
}

static void client_handle_line(ControlClient *c) {
        char *argv[CONTROL_ARGS_MAX + 1];
        int argc = control_request_parse(c->in, argv);

        if (argc == -EPROTO) {
                server_event(c->server, "control client used an unknown protocol version");
                control_client_reply_error(c, "unsupported protocol version (this manager speaks " CONTROL_PROTOCOL ")");
                return;
        }
        if (argc < 0) {
                server_event(c->server, "malformed control request");
                control_client_reply_error(c, "malformed request");
                return;
        }
        c->handled = true;
        c->timeout = sd_event_source_disable_unref(c->timeout);
        /* no more input is read from it; a hang-up still shows as EPOLLHUP */
        (void) sd_event_source_set_io_events(c->io, EPOLLRDHUP);
        c->server->handlers.request(c, argv, argc, c->server->userdata);
}

static int on_client_io(sd_event_source *src _unused_, int fd, uint32_t revents, void *userdata) {
        ControlClient *c = userdata;

        if (c->out) {
                if (revents & (EPOLLERR | EPOLLHUP))
                        client_free(c);
                else
                        client_flush(c);
                return 0;
        }
        if (c->handled) {
                /* waiting for a deferred reply: only a hang-up matters */
                if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                        client_drop(c);
                return 0;
        }

        ssize_t n = recv(fd, c->in + c->in_size, sizeof(c->in) - 1 - c->in_size, MSG_DONTWAIT);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        client_drop(c);
                return 0;
        }
        if (n == 0) {
                client_drop(c); /* closed before a whole request */
                return 0;
        }
        c->in_size += (size_t) n;
        c->in[c->in_size] = '\0';

        char *nl = memchr(c->in, '\n', c->in_size);
        if (nl) {
                *nl = '\0';
                client_handle_line(c);
        } else if (c->in_size >= sizeof(c->in) - 1) {
                server_event(c->server, "control request too long");
                control_client_reply_error(c, "request too long");
        }
        return 0;
}

static int on_client_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        ControlClient *c = userdata;
        server_event(c->server, "control client sent no complete request within %ds", CONTROL_REQUEST_TIMEOUT_SEC);
        control_client_reply_error(c, "timed out waiting for the request");
        return 0;
}

static bool peer_allowed(ControlServer *s, int fd, struct ucred *cred) {
        socklen_t len = sizeof(*cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
                return false;
        if (cred->uid == 0 || cred->uid == s->owner)
                return true;
        if (s->group == (gid_t) -1)
                return false;
        if (cred->gid == s->group)
                return true;

        gid_t groups[256];
        len = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == s->group)
                        return true;
        return false;
}

static unsigned server_clients_of(const ControlServer *s, uid_t uid) {
        unsigned n = 0;
        for (const ControlClient *c = s->clients; c; c = c->next)
                n += c->uid == uid;
        return n;
}

/* Why a new client of this uid may not have a slot, or NULL. No uid can
 * take every slot, and none but root and the manager's own uid the last
 * ones: root (and ExecReload=) always gets in. */
static const char *server_slot_refusal(const ControlServer *s, uid_t uid, char *buf, size_t size) {
        if (s->n_clients >= CONTROL_CLIENTS_MAX)
                snprintf(buf, size, "%d clients already", CONTROL_CLIENTS_MAX);
        else if (uid != 0 && uid != s->owner && s->n_clients >= CONTROL_CLIENTS_MAX - CONTROL_CLIENTS_RESERVED)
                snprintf(buf, size, "%u clients already, the last %d slots are kept for root and the manager's uid", s->n_clients,
                         CONTROL_CLIENTS_RESERVED);
        else if (uid != 0 && server_clients_of(s, uid) >= CONTROL_CLIENTS_PER_UID)
                snprintf(buf, size, "uid %u has %d clients already", (unsigned) uid, CONTROL_CLIENTS_PER_UID);
        else
                return NULL;
        return buf;
}

/* A connection that is not kept: close it, and take the reserve back if
 * it came in on it. */
static int accept_refused(ControlServer *s, int *cfd, bool on_reserve) {
        *cfd = safe_close(*cfd);
        if (on_reserve)
                server_reserve_returned(s);
        return 0;
}

static int on_accept(sd_event_source *src _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        ControlServer *s = userdata;
        struct ucred cred = {};
        bool on_reserve = false;
        static const char denied[] = CONTROL_PROTOCOL " error permission denied\n";
        static const char busy[] = CONTROL_PROTOCOL " error too many clients\n";

        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0 && (errno == EMFILE || errno == ENFILE)) {
                if (!s->out_of_fds) {
                        s->out_of_fds = true;
                        server_event(s, "control socket: cannot accept a connection: %s; answering one client "
                                     "at a time until descriptors are free again", strerror(errno));
                }
                if (s->reserve_fd >= 0) {
                        s->reserve_fd = safe_close(s->reserve_fd);
                        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (cfd < 0)
                                server_reserve_fill(s);
                }
                if (cfd < 0) {
                        server_pause(s);
                        return 0;
                }
                /* the next accept would fail the same way: wait for this client */
                on_reserve = true;
                server_pause(s);
        } else if (cfd < 0) {
                if (errno == ENOBUFS || errno == ENOMEM)
                        server_pause(s); /* would fail again at once: do not spin */
                return 0; /* EAGAIN, ECONNABORTED: try again on the next wake-up */
        } else {
                if (s->out_of_fds) {
                        s->out_of_fds = false;
                        server_event(s, "control socket: accepting connections normally again");
                }
                server_reserve_fill(s);
        }

        if (!peer_allowed(s, cfd, &cred)) {
                server_event(s, "control connection from uid %u (pid %d) refused: permission denied",
                             (unsigned) cred.uid, (int) cred.pid);
                (void) send(cfd, denied, sizeof(denied) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void) shutdown(cfd, SHUT_WR);
                return accept_refused(s, &cfd, on_reserve);
        }
        char why[128];
        if (server_slot_refusal(s, cred.uid, why, sizeof(why))) {
                server_event(s, "control connection from uid %u (pid %d) refused: %s",
                             (unsigned) cred.uid, (int) cred.pid, why);
                (void) send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void) shutdown(cfd, SHUT_WR);
                return accept_refused(s, &cfd, on_reserve);
        }

        ControlClient *c = calloc(1, sizeof(ControlClient));
        if (!c)
                return accept_refused(s, &cfd, on_reserve);
        c->server = s;
        c->uid = cred.uid;
        c->pid = cred.pid;
        c->on_reserve = on_reserve;
        c->fd = TAKE_FD(cfd);
        c->next = s->clients;
        s->clients = c;
        s->n_clients++;
        if (sd_event_add_io(s->event, &c->io, c->fd, EPOLLIN | EPOLLRDHUP, on_client_io, c) < 0 ||
            sd_event_add_time_relative(s->event, &c->timeout, CLOCK_MONOTONIC,
                                       CONTROL_REQUEST_TIMEOUT_SEC * USEC_PER_SEC, USEC_PER_MSEC * 10,
                                       on_client_timeout, c) < 0)
                client_free(c);
        return 0;
}

int control_server_new(sd_event *e, int fd, uid_t owner, gid_t group, const ControlHandlers *h, void *userdata,
                       ControlServer **ret) {
        ControlServer *s = calloc(1, sizeof(ControlServer));
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        *s = (ControlServer) { .event = sd_event_ref(e), .fd = fd, .owner = owner, .group = group, .handlers = *h, .userdata = userdata,
                               .reserve_fd = -1 };
        server_reserve_fill(s);
        int r = sd_event_add_io(e, &s->accept_source, fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                control_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int control_server_fd(const ControlServer *s) {
        return s->fd;
}

ControlServer *control_server_free(ControlServer *s) {
        if (!s)
                return NULL;
        while (s->clients)
                client_free(s->clients);
        sd_event_source_disable_unref(s->accept_source);
        sd_event_source_disable_unref(s->retry_source);
        safe_close(s->reserve_fd);
        safe_close(s->fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

static int mkdir_parents(const char *path) {
        char buf[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        return 0;
}

/* Run as root, the socket goes only into a directory nobody else can
 * change: its owner could otherwise swap the socket file for a link between
 * bind() and the ownership change. The rule of config_file_trust_problem():
 * root-owned, and not writable by a group other than root or by everyone,
 * unless sticky (there nobody else can rename or remove root's socket). */
static int control_dir_check(int dfd, const char *dir, ErrorText *why) {
        struct stat st;
        const char *who = NULL;

        if (geteuid() != 0)
                return 0;
        if (fstat(dfd, &st) < 0)
                return -errno;
        bool sticky = st.st_mode & S_ISVTX;
        if (st.st_uid != 0)
                who = "its owner, who is not root,";
        else if ((st.st_mode & S_IWOTH) && !sticky)
                who = "every user";
        else if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && !sticky)
                who = "its group, which is not root,";
        if (!who)
                return 0;
        return error_set(why, -EPERM, "refusing the directory %s as root: %s can replace the socket in it "
                         "(owner uid %u, group %u, mode %04o); make it root-owned and not group- or world-writable",
                         dir, who, (unsigned) st.st_uid, (unsigned) st.st_gid, (unsigned) (st.st_mode & 07777));
}

int control_socket_bind(const char *path, gid_t group, ErrorText *why) {
        ListenAddress a;
        int r;

        error_set_text(why, 0, "");
        r = listen_address_parse(path, &a);
        if (r < 0)
                return r;
        if (a.kind != LISTEN_UNIX_PATH)
                return -EINVAL;

        r = mkdir_parents(path);
        if (r < 0)
                return r;

        /* the directory, held open: the checks and the ownership change are
         * made on it, not on a path that could lead elsewhere by then */
        const char *base = strrchr(path, '/');
        if (!base || !base[1])
                return -EINVAL;
        _cleanup_free_ char *dir = base == path ? strdup("/") : strndup(path, (size_t) (base - path));
        if (!dir)
                return -ENOMEM;
        base++;
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                return error_set(why, r, "cannot open the directory %s: %s", dir, strerror(-r));
        }
        r = control_dir_check(dfd, dir, why);
        if (r < 0)
                return r;

        r = listen_unix_path_prepare(&a);
        if (r < 0)
                return r;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* the mode comes from the umask at bind(): no chmod() by path, and
         * no window in which the socket exists with looser permissions */
        mode_t old = umask(group != (gid_t) -1 ? 0117 : 0177);
        r = bind(fd, (struct sockaddr *) &a.sa, a.sa_len);
        umask(old);
        if (r < 0)
                return -errno;
        if (group != (gid_t) -1) {
                /* never through a link: if the socket was swapped for one,
                 * fail instead of handing its target to the group */
                struct stat st;
                if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISSOCK(st.st_mode)) {
                        return error_set(why, -EEXIST, "%s was replaced by something that is not a socket "
                                         "right after it was bound", path);
                }
                if (fchownat(dfd, base, (uid_t) -1, group, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        if (listen(fd, 64) < 0)
                return -errno;
        return TAKE_FD(fd);
}

char *control_dir(bool system) {
        char *dir = NULL;
        if (system)
                return strdup("/run/sockherd");
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (!xdg || *xdg != '/' || asprintf(&dir, "%s/sockherd", xdg) < 0)
                return NULL;
        return dir;
}

char *control_default_path(const char *name, bool for_client) {
        char *path = NULL;
        const char *rd = for_client ? NULL : getenv("RUNTIME_DIRECTORY");

        if (rd && *rd) {
                /* systemd passes every RuntimeDirectory=, ':'-separated: use the first */
                size_t n = strcspn(rd, ":");
                if (asprintf(&path, "%.*s/control", (int) n, rd) < 0)
                        return NULL;
                return path;
        }

        /* a client looks for a system pool first, then for one of its user */
        for (int system = 1; system >= 0; system--) {
                if (!for_client && system != (geteuid() == 0))
                        continue;
                _cleanup_free_ char *dir = control_dir(system);
                if (!dir)
                        continue;
                free(path);
                if (asprintf(&path, "%s/%s/control", dir, name) < 0)
                        return NULL;
                if (!for_client || access(path, F_OK) == 0)
                        return path;
        }
        if (path)
                return path; /* the last candidate, for the error message */
        return asprintf(&path, "/run/sockherd/%s/control", name) < 0 ? NULL : path;
}
