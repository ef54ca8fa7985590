/* Messages to systemd's notify socket (see systemd-notify.h). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "sockherd/systemd-notify.h"

#define SYSTEMD_NOTIFY_FDS_MAX 16

static int notify_fd = -1;
static char notify_env[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
static struct sockaddr_un notify_address;
static socklen_t notify_address_len;

/* The address in $NOTIFY_SOCKET, when it is one we send to ourselves: a
 * path or an abstract name. 1, 0 when unset, -EPROTONOSUPPORT otherwise. */
static int resolve(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        size_t n = e ? strlen(e) : 0;

        if (n == 0)
                return 0;
        if (n < 2 || (e[0] != '/' && e[0] != '@') || n >= sizeof(notify_address.sun_path))
                return -EPROTONOSUPPORT;
        if (notify_address_len > 0 && strcmp(notify_env, e) == 0)
                return 1;
        memcpy(notify_env, e, n + 1);
        notify_address = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(notify_address.sun_path, e, n);
        if (e[0] == '@')
                notify_address.sun_path[0] = '\0';
        notify_address_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
        return 1;
}

int systemd_notify_open(void) {
        int r = resolve();
        if (r <= 0 || notify_fd >= 0)
                return r < 0 && r != -EPROTONOSUPPORT ? r : 0;
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        return notify_fd < 0 ? -errno : 0;
}

void systemd_notify_close(void) {
        notify_fd = safe_close(notify_fd);
        notify_address_len = 0;
}

int systemd_notify_with_fds(const char *msg, const int *fds, size_t n_fds) {
        int r = resolve();
        if (r == 0)
                return 0;
        if (n_fds > SYSTEMD_NOTIFY_FDS_MAX)
                return -E2BIG;
        if (r > 0 && notify_fd >= 0) {
                struct iovec iov = { .iov_base = (void *) msg, .iov_len = strlen(msg) };
                union {
                        struct cmsghdr header;
                        char buf[CMSG_SPACE(sizeof(int) * SYSTEMD_NOTIFY_FDS_MAX)];
                } control = {};
                struct msghdr mh = {
                        .msg_name = &notify_address,
                        .msg_namelen = notify_address_len,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                if (n_fds > 0) {
                        mh.msg_control = &control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
                }
                if (sendmsg(notify_fd, &mh, MSG_NOSIGNAL) >= 0)
                        return 1;
        }
        /* no socket of our own (none could be made, or an address kind we
         * leave to libsystemd), or sending failed: sd_notify's own way */
        return n_fds > 0 ? sd_pid_notify_with_fds(0, 0, msg, fds, (unsigned) n_fds) : sd_notify(0, msg);
}

int systemd_notify(const char *msg) {
        return systemd_notify_with_fds(msg, NULL, 0);
}

int systemd_notifyf(const char *fmt, ...) {
        char buf[2048];
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        return systemd_notify(buf);
}
