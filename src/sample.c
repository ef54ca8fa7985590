/* Per-worker sampling from /proc and sock_diag (see sample.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockherd/procfs.h"
#include "sockherd/sample.h"
#include "sockherd/util.h"

/* the kernel's TCP states (include/net/tcp_states.h) held by a process */
enum {
        ST_ESTABLISHED = 1, ST_FIN_WAIT1 = 4, ST_FIN_WAIT2 = 5, ST_CLOSE_WAIT = 8,
        ST_LAST_ACK = 9, ST_CLOSING = 11,
};
#define CONNECTION_STATES ((1u << ST_ESTABLISHED) | (1u << ST_FIN_WAIT1) | (1u << ST_FIN_WAIT2) | \
                           (1u << ST_CLOSE_WAIT) | (1u << ST_LAST_ACK) | (1u << ST_CLOSING))

uint16_t socket_tcp_port(int fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int type = 0;
        socklen_t tlen = sizeof(type);

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
                return 0;
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return 0;
        if (ss.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *) &ss)->sin_port);
        if (ss.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
        return 0;
}

typedef struct InodeList {
        uint64_t *v;
        size_t n, allocated;
} InodeList;

static int inode_add(InodeList *l, uint64_t inode) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 256;
                uint64_t *nv = realloc(l->v, na * sizeof(uint64_t));
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->allocated = na;
        }
        l->v[l->n++] = inode;
        return 0;
}

static bool port_wanted(uint16_t port, const uint16_t *ports, size_t n_ports) {
        for (size_t i = 0; i < n_ports; i++)
                if (ports[i] == port)
                        return true;
        return false;
}

static int dump_family(int fd, int family, const uint16_t *ports, size_t n_ports, InodeList *out) {
        struct {
                struct nlmsghdr nh;
                struct inet_diag_req_v2 req;
        } msg = {
                .nh = {
                        .nlmsg_len = sizeof(msg),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                        .nlmsg_seq = (uint32_t) family,
                },
                .req = {
                        .sdiag_family = (uint8_t) family,
                        .sdiag_protocol = IPPROTO_TCP,
                        .idiag_states = CONNECTION_STATES,
                },
        };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

        if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
                return -errno;

        _cleanup_free_ char *buf = malloc(32768);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = recv(fd, buf, 32768, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EPROTO;
                for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_type == NLMSG_DONE)
                                return 0;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                        return -EPROTO;
                                /* no TCPv6 (ipv6 disabled): nothing to count */
                                if (family == AF_INET6 && (e->error == -ENOENT || e->error == -EAFNOSUPPORT))
                                        return 0;
                                return e->error ? e->error : -EPROTO;
                        }
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                                continue;
                        const struct inet_diag_msg *d = NLMSG_DATA(h);
                        if (d->idiag_inode == 0 || !port_wanted(ntohs(d->id.idiag_sport), ports, n_ports))
                                continue;
                        int r = inode_add(out, d->idiag_inode);
                        if (r < 0)
                                return r;
                }
        }
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int tcp_connection_inodes(const uint16_t *ports, size_t n_ports, uint64_t **ret_inodes) {
        InodeList l = {};
        int r = 0;

        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return -errno;
        if (n_ports > 0) {
                r = dump_family(fd, AF_INET, ports, n_ports, &l);
                if (r >= 0)
                        r = dump_family(fd, AF_INET6, ports, n_ports, &l);
        }
        if (r < 0) {
                free(l.v);
                return r;
        }
        if (l.n > 1)
                qsort(l.v, l.n, sizeof(uint64_t), compare_u64);
        *ret_inodes = l.v;
        return (int) l.n;
}


/* Count the connections among a process's fds; claimed[i] remembers which
 * worker counted inode i already, so a socket shared by forked processes
 * of one group counts once. */
static unsigned count_connections(int piddir, const uint64_t *inodes, size_t n_inodes, ssize_t *claimed,
                                  ssize_t worker) {
        unsigned count = 0;
        int fdfd = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fdfd < 0)
                return 0;
        DIR *d = fdopendir(fdfd);
        if (!d) {
                close(fdfd);
                return 0;
        }
        struct dirent *de;
        char target[64];
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                ssize_t n = readlinkat(fdfd, de->d_name, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                unsigned long long inode;
                if (strncmp(target, "socket:[", 8) != 0 || sscanf(target + 8, "%llu]", &inode) != 1)
                        continue;
                uint64_t key = inode;
                const uint64_t *hit = bsearch(&key, inodes, n_inodes, sizeof(uint64_t), compare_u64);
                if (!hit)
                        continue;
                size_t i = (size_t) (hit - inodes);
                if (claimed[i] < 0) {
                        claimed[i] = worker;
                        count++;
                }
        }
        closedir(d);
        return count;
}

int sample_workers(SampleWorker *workers, size_t n, const uint16_t *ports, size_t n_ports) {
        long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        _cleanup_free_ uint64_t *inodes = NULL;
        _cleanup_free_ ssize_t *claimed = NULL;
        size_t n_inodes = 0;
        char buf[1024];

        for (size_t i = 0; i < n; i++) {
                pid_t pgid = workers[i].pgid;
                workers[i] = (SampleWorker) { .pgid = pgid };
        }
        if (n == 0)
                return 0;
        if (tick <= 0)
                tick = 100;
        if (n_ports > 0) {
                int r = tcp_connection_inodes(ports, n_ports, &inodes);
                if (r < 0)
                        return r;
                n_inodes = (size_t) r;
                claimed = malloc((n_inodes ? n_inodes : 1) * sizeof(ssize_t));
                if (!claimed)
                        return -ENOMEM;
                for (size_t i = 0; i < n_inodes; i++)
                        claimed[i] = -1;
        }

        DIR *proc = opendir("/proc");
        if (!proc)
                return -errno;
        struct dirent *de;
        while ((de = readdir(proc))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                _cleanup_close_ int piddir = openat(dirfd(proc), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (piddir < 0)
                        continue;
                pid_t pgrp;
                uint64_t utime, stime;
                if (proc_read_text(piddir, "stat", buf, sizeof(buf)) <= 0 || proc_stat_parse(buf, &pgrp, &utime, &stime) < 0)
                        continue;
                size_t w;
                for (w = 0; w < n; w++)
                        if (workers[w].pgid == pgrp)
                                break;
                if (w == n)
                        continue;
                SampleWorker *s = &workers[w];
                s->found = true;
                s->processes++;
                s->cpu_usec += (utime + stime) * USEC_PER_SEC / (uint64_t) tick;
                unsigned long size, resident;
                if (proc_read_text(piddir, "statm", buf, sizeof(buf)) > 0 && sscanf(buf, "%lu %lu", &size, &resident) == 2)
                        s->rss_bytes += (uint64_t) resident * (uint64_t) page;
                if (n_inodes > 0)
                        s->connections += count_connections(piddir, inodes, n_inodes, claimed, (ssize_t) w);
        }
        closedir(proc);
        return 0;
}
