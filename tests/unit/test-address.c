/* Unit tests for address.c: listen address parsing and formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockherd/address.h"
#include "sockherd/util.h"

static ListenAddress parse_ok(const char *s) {
        ListenAddress a;
        memset(&a, 0xaa, sizeof(a));
        int r = listen_address_parse(s, &a);
        if (r != 0)
                fail_msg("listen_address_parse(\"%s\") failed with %d", s, r);
        return a;
}

static void check_fails(const char *s, int expected) {
        ListenAddress a;
        memset(&a, 0xaa, sizeof(a));
        int r = listen_address_parse(s, &a);
        if (r != expected)
                fail_msg("listen_address_parse(\"%s\") returned %d, expected %d", s, r, expected);
        /* nothing is written on failure */
        const unsigned char *b = (const unsigned char *) &a;
        for (size_t i = 0; i < sizeof(a); i++)
                if (b[i] != 0xaa)
                        fail_msg("listen_address_parse(\"%s\") wrote to *ret on failure", s);
}

static const struct sockaddr_in *in4(const ListenAddress *a) {
        return (const struct sockaddr_in *) &a->sa;
}
static const struct sockaddr_in6 *in6(const ListenAddress *a) {
        return (const struct sockaddr_in6 *) &a->sa;
}
static const struct sockaddr_un *un(const ListenAddress *a) {
        return (const struct sockaddr_un *) &a->sa;
}

static void test_ipv4(void **state) {
        ListenAddress a = parse_ok("127.0.0.1:8080");
        assert_int_equal(a.kind, LISTEN_TCP);
        assert_int_equal(a.sa.ss_family, AF_INET);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in));
        assert_int_equal(a.port, 8080);
        assert_int_equal(ntohs(in4(&a)->sin_port), 8080);
        assert_int_equal(ntohl(in4(&a)->sin_addr.s_addr), INADDR_LOOPBACK);

        a = parse_ok("0.0.0.0:1");
        assert_int_equal(a.kind, LISTEN_TCP);
        assert_int_equal(a.port, 1);
        assert_int_equal(in4(&a)->sin_addr.s_addr, htonl(INADDR_ANY));

        a = parse_ok("10.1.2.3:65535");
        assert_int_equal(a.port, 65535);
        assert_int_equal(ntohl(in4(&a)->sin_addr.s_addr), 0x0a010203);
}

static void test_localhost(void **state) {
        ListenAddress a = parse_ok("localhost:80");
        assert_int_equal(a.kind, LISTEN_TCP);
        assert_int_equal(a.sa.ss_family, AF_INET);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in));
        assert_int_equal(a.port, 80);
        assert_int_equal(ntohs(in4(&a)->sin_port), 80);
        assert_int_equal(ntohl(in4(&a)->sin_addr.s_addr), INADDR_LOOPBACK);
}

static void test_ipv6(void **state) {
        ListenAddress a = parse_ok("[::1]:8080");
        assert_int_equal(a.kind, LISTEN_TCP);
        assert_int_equal(a.sa.ss_family, AF_INET6);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in6));
        assert_int_equal(a.port, 8080);
        assert_int_equal(ntohs(in6(&a)->sin6_port), 8080);
        assert_memory_equal(&in6(&a)->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));

        a = parse_ok("[fe80::1:2]:443");
        struct in6_addr expected;
        assert_int_equal(inet_pton(AF_INET6, "fe80::1:2", &expected), 1);
        assert_memory_equal(&in6(&a)->sin6_addr, &expected, sizeof(expected));
        assert_int_equal(a.port, 443);

        /* an explicit [::] is a plain TCP address, not "any" */
        a = parse_ok("[::]:81");
        assert_int_equal(a.kind, LISTEN_TCP);
        assert_memory_equal(&in6(&a)->sin6_addr, &in6addr_any, sizeof(struct in6_addr));
}

static void check_any(const char *s, unsigned port) {
        ListenAddress a = parse_ok(s);
        assert_int_equal(a.kind, LISTEN_TCP_ANY);
        assert_int_equal(a.sa.ss_family, AF_INET6);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in6));
        assert_int_equal(a.port, port);
        assert_int_equal(ntohs(in6(&a)->sin6_port), port);
        assert_memory_equal(&in6(&a)->sin6_addr, &in6addr_any, sizeof(struct in6_addr));
}

static void test_any(void **state) {
        check_any(":8080", 8080);
        check_any("8080", 8080);
        check_any("1", 1);
        check_any(":65535", 65535);
}

static void test_unix_path(void **state) {
        ListenAddress a = parse_ok("/run/x.sock");
        assert_int_equal(a.kind, LISTEN_UNIX_PATH);
        assert_int_equal(a.sa.ss_family, AF_UNIX);
        assert_string_equal(un(&a)->sun_path, "/run/x.sock");
        /* the length covers the terminating NUL */
        assert_int_equal(a.sa_len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1);
        assert_int_equal(un(&a)->sun_path[strlen("/run/x.sock")], '\0');
}

static void test_unix_abstract(void **state) {
        ListenAddress a = parse_ok("@abstract");
        assert_int_equal(a.kind, LISTEN_UNIX_ABSTRACT);
        assert_int_equal(a.sa.ss_family, AF_UNIX);
        assert_int_equal(un(&a)->sun_path[0], '\0');
        assert_memory_equal(un(&a)->sun_path + 1, "abstract", strlen("abstract"));
        /* leading NUL plus the name, no trailing NUL */
        assert_int_equal(a.sa_len, offsetof(struct sockaddr_un, sun_path) + 1 + strlen("abstract"));
}

static void test_unix_path_length_limits(void **state) {
        struct sockaddr_un sun;
        char path[sizeof(sun.sun_path) + 8];

        /* the longest path that still fits with its NUL */
        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[sizeof(sun.sun_path) - 1] = '\0';
        ListenAddress a = parse_ok(path);
        assert_int_equal(a.kind, LISTEN_UNIX_PATH);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_un));
        assert_string_equal(un(&a)->sun_path, path);

        /* one more byte does not fit */
        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[sizeof(sun.sun_path)] = '\0';
        check_fails(path, -ENAMETOOLONG);

        path[0] = '@';
        check_fails(path, -ENAMETOOLONG);

        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[sizeof(path) - 1] = '\0';
        check_fails(path, -ENAMETOOLONG);
}

static void test_bad_ports(void **state) {
        check_fails("127.0.0.1:0", -ERANGE);
        check_fails("127.0.0.1:70000", -ERANGE);
        check_fails("127.0.0.1:65536", -ERANGE);
        check_fails("[::1]:0", -ERANGE);
        check_fails("[::1]:70000", -ERANGE);
        check_fails(":0", -ERANGE);
        check_fails("0", -ERANGE);
        check_fails("70000", -ERANGE);
        check_fails(":70000", -ERANGE);

        check_fails("127.0.0.1:", -EINVAL);
        check_fails("127.0.0.1:http", -EINVAL);
        check_fails("127.0.0.1:80x", -EINVAL);
        check_fails("127.0.0.1:-1", -EINVAL);
        check_fails("[::1]:", -EINVAL);
        check_fails(":", -EINVAL);
}

static void test_bad_hosts(void **state) {
        check_fails("1.2.3:80", -EINVAL);
        check_fails("1.2.3.4.5:80", -EINVAL);
        check_fails("256.1.1.1:80", -EINVAL);
        check_fails("example.com:80", -EINVAL); /* no name resolution */
        check_fails("::1:80", -EINVAL);          /* bare v6 needs brackets */
        check_fails("fe80::1:8080", -EINVAL);
        check_fails("[::1]", -EINVAL);           /* missing port */
        check_fails("[::1]8080", -EINVAL);
        check_fails("[::1:8080", -EINVAL);
        check_fails("[]:80", -EINVAL);
        check_fails("[127.0.0.1]:80", -EINVAL);
        check_fails("[nonsense]:80", -EINVAL);
        check_fails("", -EINVAL);
        check_fails(NULL, -EINVAL);
        check_fails("/", -EINVAL);
        check_fails("@", -EINVAL);
        check_fails("http", -EINVAL);
}

static void check_round_trip(const char *s, const char *canonical) {
        char buf[128], buf2[128];
        ListenAddress a = parse_ok(s);
        const char *f = listen_address_format(&a, buf);
        assert_ptr_equal(f, buf);
        if (strcmp(buf, canonical) != 0)
                fail_msg("listen_address_format(parse(\"%s\")) = \"%s\", expected \"%s\"", s, buf, canonical);

        /* the formatted text parses back to the same socket address */
        ListenAddress b = parse_ok(buf);
        assert_int_equal(b.sa_len, a.sa_len);
        assert_int_equal(b.port, a.port);
        assert_memory_equal(&b.sa, &a.sa, a.sa_len);
        listen_address_format(&b, buf2);
        assert_string_equal(buf2, buf);
}

static void test_format_round_trip(void **state) {
        check_round_trip("127.0.0.1:8080", "127.0.0.1:8080");
        check_round_trip("localhost:80", "127.0.0.1:80");
        check_round_trip("[::1]:8080", "[::1]:8080");
        check_round_trip("[2001:db8:0:0::1]:443", "[2001:db8::1]:443");
        check_round_trip(":8080", "[::]:8080");
        check_round_trip("8080", "[::]:8080");
        check_round_trip("/run/x.sock", "/run/x.sock");
        check_round_trip("@abstract", "@abstract");
        check_round_trip("@sockherd/app/notify", "@sockherd/app/notify");
}

static void test_socket_address_format(void **state) {
        char buf[128];
        char name[64];
        snprintf(name, sizeof(name), "@sockherd-test-address/%d", (int) getpid());

        ListenAddress a = parse_ok(name);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (const struct sockaddr *) &a.sa, a.sa_len), 0);
        assert_int_equal(socket_address_format(fd, buf), 0);
        assert_string_equal(buf, name);

        _cleanup_close_ int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(tcp >= 0);
        ListenAddress t = parse_ok("127.0.0.1:1");
        ((struct sockaddr_in *) &t.sa)->sin_port = 0; /* any free port */
        assert_int_equal(bind(tcp, (const struct sockaddr *) &t.sa, t.sa_len), 0);
        assert_int_equal(socket_address_format(tcp, buf), 0);
        assert_int_equal(strncmp(buf, "127.0.0.1:", 10), 0);
        assert_true(strcmp(buf, "127.0.0.1:0") != 0);

        assert_int_equal(socket_address_format(-1, buf), -EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_localhost),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_any),
                cmocka_unit_test(test_unix_path),
                cmocka_unit_test(test_unix_abstract),
                cmocka_unit_test(test_unix_path_length_limits),
                cmocka_unit_test(test_bad_ports),
                cmocka_unit_test(test_bad_hosts),
                cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_socket_address_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
