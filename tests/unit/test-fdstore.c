/* fd store bookkeeping: stable names from canonical addresses, telling
 * our stored sockets from socket-unit ones, and moving them between sets
 * the way startup does. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockherd/fdstore.h"
#include "sockherd/listen.h"

static const char *name_of(const char *address, char buf[static FDSTORE_NAME_MAX]) {
        ListenAddress a;
        assert_int_equal(listen_address_parse(address, &a), 0);
        return fdstore_name(&a, buf);
}

static void test_names(void **state) {
        char buf[FDSTORE_NAME_MAX], other[FDSTORE_NAME_MAX];

        assert_string_equal(name_of("127.0.0.1:8080", buf), "sockherd-listen/127.0.0.1_8080");
        assert_string_equal(name_of("[::1]:443", buf), "sockherd-listen/[__1]_443");
        assert_string_equal(name_of("/run/app.sock", buf), "sockherd-listen//run/app.sock");
        assert_string_equal(name_of("@app", buf), "sockherd-listen/@app");
        /* the same socket written two ways has one name */
        assert_string_equal(name_of("localhost:80", buf), name_of("127.0.0.1:80", other));
        assert_string_equal(name_of(":8080", buf), name_of("8080", other));
        /* different addresses never share one */
        assert_string_not_equal(name_of("127.0.0.1:80", buf), name_of("127.0.0.1:81", other));
        /* a valid fd name: no ':' */
        assert_null(strchr(name_of("[::]:8080", buf), ':'));
}

static void test_is_ours(void **state) {
        assert_true(fdstore_name_is_ours("sockherd-listen/127.0.0.1_80"));
        assert_false(fdstore_name_is_ours("app.socket"));
        assert_false(fdstore_name_is_ours("listen"));
        assert_false(fdstore_name_is_ours("control"));
}

static int fake_fd(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_startup_split(void **state) {
        /* what LISTEN_FDNAMES=app.socket:sockherd-listen/a:control:sockherd-listen/b brings */
        ListenSet passed = {}, stored = {};
        const char *names[] = { "app.socket", "sockherd-listen/a", "control", "sockherd-listen/b" };
        int fds[4];

        for (int i = 0; i < 4; i++) {
                fds[i] = fake_fd();
                assert_int_equal(listen_set_adopt(&passed, fds[i], names[i]), 0);
        }
        passed.passed_in = true;

        assert_int_equal(listen_set_take_named(&passed, "control"), fds[2]);
        assert_int_equal(listen_set_take_named(&passed, "control"), -1);
        close(fds[2]);
        assert_int_equal(listen_set_move(&passed, &stored, fdstore_name_is_ours), 0);

        assert_int_equal(passed.n, 1);
        assert_string_equal(passed.sockets[0].name, "app.socket");
        assert_int_equal(stored.n, 2);
        assert_string_equal(stored.sockets[0].name, "sockherd-listen/a");
        assert_string_equal(stored.sockets[1].name, "sockherd-listen/b");

        /* a configured address finds its stored socket by name, once */
        assert_int_equal(listen_set_take_named(&stored, "sockherd-listen/b"), fds[3]);
        assert_int_equal(listen_set_take_named(&stored, "sockherd-listen/b"), -1);
        close(fds[3]);
        assert_int_equal(stored.n, 1);

        char *joined = listen_set_names(&passed);
        assert_string_equal(joined, "app.socket");
        free(joined);

        listen_set_clear(&passed);
        listen_set_clear(&stored);
        assert_int_equal(passed.n, 0);
        assert_null(passed.sockets);
}

static void test_without_notify_socket_nothing_is_sent(void **state) {
        unsetenv("NOTIFY_SOCKET");
        assert_int_equal(fdstore_store(0, "sockherd-listen/x"), 0);
        assert_int_equal(fdstore_remove("sockherd-listen/x"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_is_ours),
                cmocka_unit_test(test_startup_split),
                cmocka_unit_test(test_without_notify_socket_nothing_is_sent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
