/* Listen addresses as written by the user ("127.0.0.1:8080", "[::1]:80",
 * ":8080", "8080", "/run/app.sock", "@app") turned into socket addresses.
 * Pure: parsing neither resolves names nor touches the file system. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef enum ListenKind {
        LISTEN_TCP,       /* a v4 or v6 address and port */
        LISTEN_TCP_ANY,   /* all addresses: [::] dual-stack, 0.0.0.0 if no IPv6 */
        LISTEN_UNIX_PATH,
        LISTEN_UNIX_ABSTRACT,
} ListenKind;

typedef struct ListenAddress {
        ListenKind kind;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        unsigned port;          /* TCP kinds */
} ListenAddress;

/* -EINVAL for a malformed address, -ERANGE for a bad port,
 * -ENAMETOOLONG for a path that does not fit sun_path. */
int listen_address_parse(const char *s, ListenAddress *ret);

/* "127.0.0.1:8080", "[::]:8080", "/run/x.sock", "@x"; buf of 128 bytes. */
const char *listen_address_format(const ListenAddress *a, char buf[static 128]);

/* Describe a bound socket's local address the same way; -errno. */
int socket_address_format(int fd, char buf[static 128]);
