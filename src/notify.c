/* The worker-notify socket: create, receive, check, parse. Behaves like
 * systemd's own notify socket (see shared notes): non-blocking,
 * SO_PASSCRED, drop anything without credentials, truncated or with NULs,
 * and close every fd a sender passes, so no worker can make the manager
 * leak descriptors. It lives in a private directory (mode 0710, the
 * workers' group) rather than the abstract namespace, which every local
 * user can reach: strangers cannot send to it at all. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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

#define NOTIFY_DIR_PREFIX "notify."
#define NOTIFY_SOCKET_NAME "notify"

int notify_socket_open(const char *base, gid_t group, char **ret_address) {
        _cleanup_close_ int fd = -1, dfd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[sizeof(sa.sun_path)];
        int one = 1, rcvbuf = 8 * 1024 * 1024;

        int len = snprintf(dir, sizeof(dir), "%s/" NOTIFY_DIR_PREFIX "XXXXXX", base);
        if (len < 0 || (size_t) len + strlen("/" NOTIFY_SOCKET_NAME) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (mkdir(base, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (!mkdtemp(dir)) /* mode 0700, ours */
                return -errno;
        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" NOTIFY_SOCKET_NAME, dir) >= sizeof(sa.sun_path)) {
                (void) rmdir(dir);
                return -ENAMETOOLONG;
        }

        /* the directory is the gate: search permission for its group (the
         * workers'), nothing for anyone else, so a local user who is not a
         * worker cannot even reach the socket to flood it */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 ||
            (group != (gid_t) -1 && fchown(dfd, (uid_t) -1, group) < 0) ||
            fchmod(dfd, 0710) < 0) {
                int r = -errno;
                (void) rmdir(dir);
                return r;
        }

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                int r = -errno;
                (void) rmdir(dir);
                return r;
        }
        /* best effort: a burst of READY messages from a large pool must fit */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
        /* writable by whoever gets through the directory (workers may run
         * as another user than the one that binds) */
        mode_t old = umask(0);
        int r = bind(fd, (struct sockaddr *) &sa, (socklen_t) sizeof(sa));
        umask(old);
        if (r < 0) {
                r = -errno;
                (void) rmdir(dir);
                return r;
        }

        char *address = strdup(sa.sun_path);
        if (!address) {
                notify_socket_remove(sa.sun_path);
                return -ENOMEM;
        }
        *ret_address = address;
        return TAKE_FD(fd);
}

/* The private directory of a path address, or -EINVAL for an abstract
 * address (handed over by a re-exec from an older version). */
static int address_dir(const char *address, char dir[static sizeof(((struct sockaddr_un *) 0)->sun_path)]) {
        if (!address || address[0] != '/')
                return -EINVAL;
        snprintf(dir, sizeof(((struct sockaddr_un *) 0)->sun_path), "%s", address);
        char *slash = strrchr(dir, '/');
        if (!slash || strcmp(slash + 1, NOTIFY_SOCKET_NAME) != 0)
                return -EINVAL;
        *slash = '\0';
        return 0;
}

int notify_socket_set_group(const char *address, gid_t group) {
        char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        int r = address_dir(address, dir);
        if (r < 0)
                return r;
        return fchownat(AT_FDCWD, dir, (uid_t) -1, group, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

void notify_socket_remove(const char *address) {
        char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        if (address_dir(address, dir) < 0)
                return;
        (void) unlink(address);
        (void) rmdir(dir);
}

/* Whether something is bound at dir/notify right now. */
static bool socket_in_use(const char *base, const char *name) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s/" NOTIFY_SOCKET_NAME, base, name);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || n < 0 || (size_t) n >= sizeof(sa.sun_path))
                return true; /* when in doubt, keep it */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return true;
        return errno != ECONNREFUSED && errno != ENOENT;
}

unsigned notify_sweep(const char *base) {
        _cleanup_close_ int bfd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        unsigned removed = 0;

        /* only in a directory nobody else can put things into */
        if (bfd < 0 || fstat(bfd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return 0;
        int dup_fd = dup(bfd);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                safe_close(dup_fd);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d)) && removed < 1024;) {
                if (strncmp(de->d_name, NOTIFY_DIR_PREFIX, strlen(NOTIFY_DIR_PREFIX)) != 0)
                        continue;
                _cleanup_close_ int dfd = openat(bfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != geteuid() || socket_in_use(base, de->d_name))
                        continue;
                (void) unlinkat(dfd, NOTIFY_SOCKET_NAME, 0);
                if (unlinkat(bfd, de->d_name, AT_REMOVEDIR) == 0)
                        removed++;
        }
        closedir(d);
        return removed;
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

int notify_receive(int fd, struct ucred *ret_sender, NotifyMessage *ret_msg, const char **ret_reason) {
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

        *ret_sender = cred ? *cred : (struct ucred) { .uid = (uid_t) -1, .gid = (gid_t) -1 };
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
