/* Parsing and formatting of listen addresses. Only numeric hosts (plus
 * "localhost") are accepted so that parsing is deterministic and never waits
 * for DNS: a pool's sockets must not depend on a resolver at boot. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sockherd/address.h"
#include "sockherd/parse.h"

static int parse_port(const char *s, unsigned *ret) {
        int r = parse_uint_range(s, 1, 65535, ret);
        return r == -EINVAL ? -EINVAL : r;
}

int listen_address_parse(const char *s, ListenAddress *ret) {
        ListenAddress a = {};

        if (!s || *s == '\0')
                return -EINVAL;

        if (s[0] == '/' || s[0] == '@') {
                struct sockaddr_un *un = (struct sockaddr_un *) &a.sa;
                size_t len = strlen(s);
                if (len >= sizeof(un->sun_path))
                        return -ENAMETOOLONG;
                if (len < 2)
                        return -EINVAL;
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, s, len);
                if (s[0] == '@') {
                        /* abstract: leading NUL, length without a trailing NUL */
                        un->sun_path[0] = '\0';
                        a.kind = LISTEN_UNIX_ABSTRACT;
                        a.sa_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
                } else {
                        a.kind = LISTEN_UNIX_PATH;
                        a.sa_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
                }
                *ret = a;
                return 0;
        }

        const char *port;
        char host[INET6_ADDRSTRLEN + 1] = "";

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':' || (size_t) (close - s - 1) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, (size_t) (close - s - 1));
                port = close + 2;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a.sa;
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                int r = parse_port(port, &a.port);
                if (r < 0)
                        return r;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) a.port);
                a.kind = LISTEN_TCP;
                a.sa_len = sizeof(*in6);
                *ret = a;
                return 0;
        }

        const char *colon = strrchr(s, ':');
        if (!colon || colon == s) {
                /* "PORT" or ":PORT": every address */
                int r = parse_port(colon ? colon + 1 : s, &a.port);
                if (r < 0)
                        return r;
                a.kind = LISTEN_TCP_ANY;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a.sa;
                in6->sin6_family = AF_INET6;
                in6->sin6_addr = in6addr_any;
                in6->sin6_port = htons((uint16_t) a.port);
                a.sa_len = sizeof(*in6);
                *ret = a;
                return 0;
        }

        if ((size_t) (colon - s) >= sizeof(host) || memchr(s, ':', (size_t) (colon - s)))
                return -EINVAL; /* a bare v6 address needs brackets */
        memcpy(host, s, (size_t) (colon - s));
        if (strcmp(host, "localhost") == 0)
                strcpy(host, "127.0.0.1");

        struct sockaddr_in *in = (struct sockaddr_in *) &a.sa;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                return -EINVAL;
        int r = parse_port(colon + 1, &a.port);
        if (r < 0)
                return r;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t) a.port);
        a.kind = LISTEN_TCP;
        a.sa_len = sizeof(*in);
        *ret = a;
        return 0;
}

static const char *sockaddr_format(const struct sockaddr_storage *ss, socklen_t len, char buf[static 128]) {
        char host[INET6_ADDRSTRLEN];

        switch (ss->ss_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *) ss;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                snprintf(buf, 128, "%s:%u", host, ntohs(in->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ss;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                snprintf(buf, 128, "[%s]:%u", host, ntohs(in6->sin6_port));
                break;
        }
        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *) ss;
                size_t n = len > offsetof(struct sockaddr_un, sun_path)
                        ? len - offsetof(struct sockaddr_un, sun_path) : 0;
                if (n == 0)
                        snprintf(buf, 128, "unix:(unnamed)");
                else if (un->sun_path[0] == '\0')
                        snprintf(buf, 128, "@%.*s", (int) (n - 1), un->sun_path + 1);
                else
                        snprintf(buf, 128, "%.*s", (int) strnlen(un->sun_path, n), un->sun_path);
                break;
        }
        default:
                snprintf(buf, 128, "(family %d)", ss->ss_family);
        }
        return buf;
}

const char *listen_address_format(const ListenAddress *a, char buf[static 128]) {
        return sockaddr_format(&a->sa, a->sa_len, buf);
}

int socket_address_format(int fd, char buf[static 128]) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(ss);

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        sockaddr_format(&ss, len, buf);
        return 0;
}
