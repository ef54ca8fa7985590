/* Sibling sockets and steering for balance = reuseport (see reuseport.h).
 *
 * Why a BPF program rather than net.ipv4.tcp_migrate_req: the sysctl is
 * off by default (it is on this project's machines), it is host-wide, and
 * it only migrates what is queued at close time. Steering with
 * SO_ATTACH_REUSEPORT_CBPF works on any kernel since 4.5 and lets the
 * manager stop new connections from landing on a slot before it drains
 * and closes it. */
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockherd/reuseport.h"
#include "sockherd/util.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

bool reuseport_applies(int fd) {
        int type = 0, listening = 0, protocol = 0;
        socklen_t len = sizeof(int);
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
                return false;
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)
                return false;
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0 || protocol != IPPROTO_TCP)
                return false;
        if (getsockname(fd, (struct sockaddr *) &ss, &sslen) < 0)
                return false;
        return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

int reuseport_enabled(int fd) {
        int v = 0;
        socklen_t len = sizeof(v);
        if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) < 0)
                return -errno;
        return v != 0;
}

int reuseport_sibling(int base, unsigned backlog) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int one = 1;

        if (getsockname(base, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                return -errno;
        if (ss.ss_family == AF_INET6) {
                int v6only = 0;
                socklen_t l = sizeof(v6only);
                if (getsockopt(base, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) < 0 ||
                    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
                        return -errno;
        }
        /* the base's backlog when the kernel tells it, else the configured one */
        unsigned queued, base_backlog;
        if (listen_queue(base, &queued, &base_backlog) >= 0 && base_backlog > 0)
                backlog = base_backlog;
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        if (listen(fd, (int) backlog) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int reuseport_steer(int fd, unsigned n) {
        struct sock_filter code[] = {
                /* A = a random number; A %= n; return A (the index in the group) */
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t) (SKF_AD_OFF + SKF_AD_RANDOM)),
                BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n ? n : 1),
                BPF_STMT(BPF_RET | BPF_A, 0),
        };
        struct sock_fprog prog;

        memset(&prog, 0, sizeof(prog)); /* no uninitialised padding goes to the kernel */
        prog.len = ELEMENTSOF(code);
        prog.filter = code;

        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
                return -errno;
        return 0;
}
