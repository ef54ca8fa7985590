/* The worker-notify socket: receive, check, parse. Behaves like systemd's
 * own notify socket (see shared notes): non-blocking, SO_PASSCRED, drop
 * anything without credentials, truncated or with NULs, and close every fd
 * a sender passes, so no worker can make the manager leak descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sockherd/notify.h"
#include "sockherd/util.h"

static bool field_is(const char *line, size_t len, const char *field) {
        size_t n = strlen(field);
        return len == n && memcmp(line, field, n) == 0;
}

int notify_message_parse(const char *buf, size_t len, NotifyMessage *ret) {
        NotifyMessage m = {};

        if (len > NOTIFY_MESSAGE_MAX || memchr(buf, '\0', len))
                return -EBADMSG;

        for (const char *p = buf, *end = buf + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);

                if (field_is(p, n, "READY=1"))
                        m.ready = true;
                else if (field_is(p, n, "STOPPING=1"))
                        m.stopping = true;
                else if (field_is(p, n, "WATCHDOG=1"))
                        m.watchdog = true;
                else if (field_is(p, n, "BARRIER=1"))
                        m.barrier = true;
                else if (n >= 7 && memcmp(p, "STATUS=", 7) == 0) {
                        size_t v = n - 7;
                        if (v >= sizeof(m.status))
                                v = sizeof(m.status) - 1; /* keep the start of a long status */
                        memcpy(m.status, p + 7, v);
                        m.status[v] = '\0';
                        /* keep it to one printable line */
                        for (char *c = m.status; *c; c++)
                                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                        *c = ' ';
                        m.has_status = true;
                }
                p += n + 1;
        }

        *ret = m;
        return 0;
}

int notify_socket_open(const char *name, char **ret_address) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t random_id = 0;
        int one = 1, rcvbuf = 8 * 1024 * 1024;

        if (getrandom(&random_id, sizeof(random_id), GRND_NONBLOCK) < 0)
                random_id = (uint64_t) getpid() * 2654435761u;

        /* abstract: nothing to clean up on disk, gone with the manager */
        int len = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "sockherd/%s/%d/%016llx/notify",
                           name, (int) getpid(), (unsigned long long) random_id);
        if (len < 0 || (size_t) len >= sizeof(sa.sun_path) - 1)
                return -ENAMETOOLONG;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        /* best effort: a burst of READY messages from a large pool must fit */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
        if (bind(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) len)) < 0)
                return -errno;

        char *address = malloc((size_t) len + 2);
        if (!address)
                return -ENOMEM;
        address[0] = '@';
        memcpy(address + 1, sa.sun_path + 1, (size_t) len + 1);
        *ret_address = address;
        return TAKE_FD(fd);
}

static void close_passed_fds(struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *) CMSG_DATA(c);
                for (size_t i = 0; i < n; i++)
                        safe_close(fds[i]);
        }
}

int notify_receive(int fd, pid_t *ret_pid, NotifyMessage *ret_msg, const char **ret_reason) {
        char buf[NOTIFY_MESSAGE_MAX + 1];
        union {
                struct cmsghdr align;
                char raw[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 253)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };

        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return NOTIFY_NOTHING;
                return -errno;
        }

        /* the fds are closed first, whatever else happens to the message */
        close_passed_fds(&mh);

        const struct ucred *cred = NULL;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                        cred = (const struct ucred *) CMSG_DATA(c);

        *ret_pid = cred ? cred->pid : 0;
        if (!cred || cred->pid <= 0) {
                *ret_reason = "no sender credentials";
                return NOTIFY_DROPPED;
        }
        if ((size_t) n > NOTIFY_MESSAGE_MAX || (mh.msg_flags & MSG_TRUNC)) {
                *ret_reason = "message too long";
                return NOTIFY_DROPPED;
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                *ret_reason = "too many file descriptors attached";
                return NOTIFY_DROPPED;
        }
        if (notify_message_parse(buf, (size_t) n, ret_msg) < 0) {
                *ret_reason = "malformed message";
                return NOTIFY_DROPPED;
        }
        return NOTIFY_RECEIVED;
}

static pid_t pid_parent(pid_t pid) {
        char path[64], buf[512];

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
        const char *p = strrchr(buf, ')');
        int ppid;
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return 0;
        return (pid_t) ppid;
}

pid_t notify_find_worker(pid_t pid, bool (*is_worker)(pid_t pid, void *userdata), void *userdata) {
        for (unsigned depth = 0; depth < 32 && pid > 1; depth++) {
                if (is_worker(pid, userdata))
                        return pid;
                pid = pid_parent(pid);
        }
        return 0;
}
