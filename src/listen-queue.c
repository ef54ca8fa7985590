/* A listening socket's accept queue and backlog (see listen-queue.h). */
#include <errno.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockherd/listen-queue.h"
#include "sockherd/util.h"

static int tcp_listen_queue(int fd, unsigned *ret_queued, unsigned *ret_backlog) {
        struct tcp_info info = {};
        socklen_t len = sizeof(info);

        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return -errno;
        /* for a listening socket: unacked is the accept queue, sacked the backlog */
        *ret_queued = info.tcpi_unacked;
        *ret_backlog = info.tcpi_sacked;
        return 0;
}

/* One sock_diag question about one unix socket, by inode: for a listening
 * one, UNIX_DIAG_RQLEN's rqueue is the accept queue and wqueue the
 * backlog. */
static int unix_listen_queue(int fd, unsigned *ret_queued, unsigned *ret_backlog) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;

        _cleanup_close_ int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (nl < 0)
                return -errno;
        struct {
                struct nlmsghdr nlh;
                struct unix_diag_req req;
        } q;
        memset(&q, 0, sizeof(q));
        q.nlh.nlmsg_len = sizeof(q);
        q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        q.nlh.nlmsg_flags = NLM_F_REQUEST;
        q.req.sdiag_family = AF_UNIX;
        q.req.udiag_states = 1u << 10; /* TCP_LISTEN */
        q.req.udiag_ino = (unsigned) st.st_ino;
        q.req.udiag_show = UDIAG_SHOW_RQLEN;
        q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = ~0u; /* no cookie: by inode alone */
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        if (sendto(nl, &q, sizeof(q), 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        union {
                struct nlmsghdr nlh;
                char buf[1024];
        } a;
        ssize_t n = recv(nl, &a, sizeof(a), 0);
        if (n < 0)
                return -errno;
        struct nlmsghdr *h = &a.nlh;
        if (!NLMSG_OK(h, (size_t) n))
                return -EBADMSG;
        if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error < 0 ? e->error : -EBADMSG;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                return -EBADMSG;
        const struct unix_diag_msg *m = NLMSG_DATA(h);
        if (m->udiag_ino != (unsigned) st.st_ino)
                return -EBADMSG;
        const char *at = (const char *) (m + 1), *end = (const char *) h + h->nlmsg_len;
        while (end - at >= (ptrdiff_t) NLA_HDRLEN) {
                const struct nlattr *attr = (const struct nlattr *) at;
                if (attr->nla_len < NLA_HDRLEN || attr->nla_len > end - at)
                        return -EBADMSG;
                if (attr->nla_type == UNIX_DIAG_RQLEN && attr->nla_len >= NLA_HDRLEN + sizeof(struct unix_diag_rqlen)) {
                        struct unix_diag_rqlen rq;
                        memcpy(&rq, at + NLA_HDRLEN, sizeof(rq));
                        *ret_queued = rq.udiag_rqueue;
                        *ret_backlog = rq.udiag_wqueue;
                        return 0;
                }
                at += NLA_ALIGN(attr->nla_len);
        }
        return -ENODATA;
}

int listen_queue(int fd, unsigned *ret_queued, unsigned *ret_backlog) {
        int domain = 0;
        socklen_t len = sizeof(domain);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
                return -errno;
        if (domain == AF_INET || domain == AF_INET6)
                return tcp_listen_queue(fd, ret_queued, ret_backlog);
        if (domain == AF_UNIX)
                return unix_listen_queue(fd, ret_queued, ret_backlog);
        return -EOPNOTSUPP;
}
