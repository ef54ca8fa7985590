/* Unit tests for notify.c: the sd_notify datagram parser, the worker-notify
 * socket (in-process: this test sends to its own socket), fd hygiene, and
 * the walk up the process tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "strict-skip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sockherd/notify.h"
#include "sockherd/util.h"

/* ---- notify_message_parse ---- */

static NotifyMessage parse_ok(const char *buf, size_t len) {
        NotifyMessage m;
        memset(&m, 0x55, sizeof(m));
        int r = notify_message_parse(buf, len, &m);
        if (r != 0)
                fail_msg("notify_message_parse(\"%.*s\") failed with %d", (int) len, buf, r);
        return m;
}

#define PARSE(s) parse_ok(s, strlen(s))

static void test_parse_single_fields(void **state) {
        NotifyMessage m = PARSE("READY=1");
        assert_true(m.ready);
        assert_false(m.stopping);
        assert_false(m.watchdog);
        assert_false(m.barrier);
        assert_false(m.has_status);

        m = PARSE("STOPPING=1");
        assert_true(m.stopping);
        assert_false(m.ready);

        m = PARSE("WATCHDOG=1");
        assert_true(m.watchdog);
        assert_false(m.ready);

        m = PARSE("BARRIER=1");
        assert_true(m.barrier);
        assert_false(m.ready);

        m = PARSE("STATUS=Serving 3 connections");
        assert_true(m.has_status);
        assert_string_equal(m.status, "Serving 3 connections");
        assert_false(m.ready);

        m = PARSE("STATUS=");
        assert_true(m.has_status);
        assert_string_equal(m.status, "");
}

static void test_parse_several_fields(void **state) {
        NotifyMessage m = PARSE("READY=1\nSTATUS=up and running\nWATCHDOG=1\n");
        assert_true(m.ready);
        assert_true(m.watchdog);
        assert_true(m.has_status);
        assert_string_equal(m.status, "up and running");
        assert_false(m.stopping);
        assert_false(m.barrier);

        m = PARSE("STOPPING=1\nBARRIER=1");
        assert_true(m.stopping);
        assert_true(m.barrier);
        assert_false(m.ready);

        /* the last STATUS wins */
        m = PARSE("STATUS=first\nSTATUS=second");
        assert_string_equal(m.status, "second");
}

static void test_parse_ignores_unknown_and_wrong_values(void **state) {
        NotifyMessage m = PARSE("MAINPID=42\nX_CUSTOM=1\nREADY=1\nERRNO=2\n");
        assert_true(m.ready);
        assert_false(m.has_status);

        m = PARSE("READY=0\nREADY=11\nREADY\nready=1\n READY=1\nSTOPPING=yes\nWATCHDOG=trigger\n"
                  "BARRIER=0\nSTATUS");
        assert_false(m.ready);
        assert_false(m.stopping);
        assert_false(m.watchdog);
        assert_false(m.barrier);
        assert_false(m.has_status);

        m = PARSE("");
        assert_false(m.ready);
        assert_false(m.has_status);

        m = PARSE("\n\n\n");
        assert_false(m.ready);
}

static void test_parse_rejects(void **state) {
        NotifyMessage m = { .ready = true };
        static const char with_nul[] = "READY=1\0STATUS=x";
        assert_int_equal(notify_message_parse(with_nul, sizeof(with_nul) - 1, &m), -EBADMSG);

        char big[NOTIFY_MESSAGE_MAX + 2];
        memset(big, 'x', sizeof(big));
        memcpy(big, "READY=1\n", 8);
        assert_int_equal(notify_message_parse(big, NOTIFY_MESSAGE_MAX + 1, &m), -EBADMSG);
        assert_int_equal(notify_message_parse(big, sizeof(big), &m), -EBADMSG);

        /* exactly the maximum is fine */
        NotifyMessage ok = parse_ok(big, NOTIFY_MESSAGE_MAX);
        assert_true(ok.ready);
}

static void test_parse_status_control_characters(void **state) {
        NotifyMessage m = PARSE("STATUS=a\tb\rc\x01" "d\x1b[31me\x7f" "f");
        assert_true(m.has_status);
        assert_string_equal(m.status, "a b c d [31me f");

        /* non-ASCII text is kept */
        m = PARSE("STATUS=caf\xc3\xa9");
        assert_string_equal(m.status, "caf\xc3\xa9");
}

static void test_parse_long_status_truncated(void **state) {
        char buf[2048];
        strcpy(buf, "READY=1\nSTATUS=");
        size_t prefix = strlen(buf);
        for (size_t i = 0; i < 1000; i++)
                buf[prefix + i] = (char) ('a' + i % 26);
        buf[prefix + 1000] = '\0';
        strcat(buf, "\nWATCHDOG=1");

        NotifyMessage m = parse_ok(buf, strlen(buf));
        assert_true(m.ready);
        assert_true(m.watchdog);
        assert_true(m.has_status);
        assert_int_equal(strlen(m.status), NOTIFY_STATUS_MAX - 1);
        assert_memory_equal(m.status, buf + prefix, NOTIFY_STATUS_MAX - 1);
}

/* ---- the socket ---- */

typedef struct Peer {
        char base[64];          /* a scratch directory the socket's directory goes into */
        int fd;                 /* the manager side, from notify_socket_open */
        char *address;          /* BASE/notify.XXXXXX/notify */
        struct sockaddr_un sa;
        socklen_t sa_len;
        int client;             /* an unbound SOCK_DGRAM socket to send from */
} Peer;

static int peer_setup(void **state) {
        Peer *p = calloc(1, sizeof(Peer));
        if (!p)
                return -1;
        snprintf(p->base, sizeof(p->base), "/tmp/test-notify-XXXXXX");
        if (!mkdtemp(p->base))
                return -1;
        p->fd = notify_socket_open(p->base, (gid_t) -1, &p->address);
        if (p->fd < 0 || !p->address || p->address[0] != '/')
                return -1;

        p->sa.sun_family = AF_UNIX;
        snprintf(p->sa.sun_path, sizeof(p->sa.sun_path), "%s", p->address);
        p->sa_len = (socklen_t) sizeof(p->sa);

        p->client = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (p->client < 0)
                return -1;
        *state = p;
        return 0;
}

static int peer_teardown(void **state) {
        Peer *p = *state;
        if (p) {
                safe_close(p->fd);
                safe_close(p->client);
                notify_socket_remove(p->address);
                (void) rmdir(p->base);
                free(p->address);
                free(p);
        }
        return 0;
}

static void peer_send(Peer *p, const void *buf, size_t len) {
        ssize_t n = sendto(p->client, buf, len, 0, (const struct sockaddr *) &p->sa, p->sa_len);
        if (n < 0)
                fail_msg("sendto %s: %s", p->address, strerror(errno));
        assert_int_equal((size_t) n, len);
}

static void peer_send_fds(Peer *p, const void *buf, size_t len, const int *fds, size_t n_fds) {
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        union {
                struct cmsghdr align;
                char raw[CMSG_SPACE(sizeof(int) * 8)];
        } control = {};
        assert_true(n_fds <= 8);
        struct msghdr mh = {
                .msg_name = &p->sa,
                .msg_namelen = p->sa_len,
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = CMSG_SPACE(sizeof(int) * n_fds),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        if (sendmsg(p->client, &mh, 0) < 0)
                fail_msg("sendmsg: %s", strerror(errno));
}

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        unsigned n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static void test_socket_address(void **state) {
        Peer *p = *state;
        char prefix[128], dir[128];
        struct stat st;

        snprintf(prefix, sizeof(prefix), "%s/notify.", p->base);
        assert_int_equal(strncmp(p->address, prefix, strlen(prefix)), 0);
        assert_non_null(strstr(p->address + strlen(prefix), "/notify"));

        /* the directory is the gate: ours, 0710, nothing for others */
        snprintf(dir, sizeof(dir), "%s", p->address);
        *strrchr(dir, '/') = '\0';
        assert_int_equal(lstat(dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0710);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(lstat(p->address, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));

        /* non-blocking and close-on-exec, as the manager's loop needs */
        int fl = fcntl(p->fd, F_GETFL);
        assert_true(fl >= 0 && (fl & O_NONBLOCK));
        int fdfl = fcntl(p->fd, F_GETFD);
        assert_true(fdfl >= 0 && (fdfl & FD_CLOEXEC));
        /* credentials on: that is how the sender's pid is known */
        int passcred = 0;
        socklen_t optlen = sizeof(passcred);
        assert_int_equal(getsockopt(p->fd, SOL_SOCKET, SO_PASSCRED, &passcred, &optlen), 0);
        assert_int_equal(passcred, 1);
        int type = 0;
        optlen = sizeof(type);
        assert_int_equal(getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &type, &optlen), 0);
        assert_int_equal(type, SOCK_DGRAM);

        /* it is bound to exactly that path */
        struct sockaddr_un sa = {};
        socklen_t len = sizeof(sa);
        assert_int_equal(getsockname(p->fd, (struct sockaddr *) &sa, &len), 0);
        assert_string_equal(sa.sun_path, p->address);

        /* two managers get two different addresses */
        char *other = NULL;
        int fd2 = notify_socket_open(p->base, (gid_t) -1, &other);
        assert_true(fd2 >= 0);
        assert_string_not_equal(other, p->address);
        close(fd2);
        notify_socket_remove(other);
        free(other);
}

static void test_socket_group(void **state) {
        Peer *p = *state;
        char dir[128];
        struct stat st;
        gid_t other = 65534; /* nogroup */

        if (geteuid() != 0)
                skip_or_fail("setting the notify directory's group needs root");
        snprintf(dir, sizeof(dir), "%s", p->address);
        *strrchr(dir, '/') = '\0';
        assert_int_equal(notify_socket_set_group(p->address, other), 0);
        assert_int_equal(lstat(dir, &st), 0);
        assert_int_equal(st.st_gid, other);
        assert_int_equal(st.st_mode & 07777, 0710);
        /* an abstract address has no directory */
        assert_int_equal(notify_socket_set_group("@old/notify", other), -EINVAL);
}

/* What a crashed manager leaves is swept; a live socket is not. */
static void test_sweep(void **state) {
        Peer *p = *state;
        char *dead = NULL;
        struct stat st;

        int fd = notify_socket_open(p->base, (gid_t) -1, &dead);
        assert_true(fd >= 0);
        close(fd); /* the manager is gone, its directory is not */
        assert_int_equal(lstat(dead, &st), 0);

        assert_int_equal(notify_sweep(p->base), 1);
        assert_int_equal(lstat(dead, &st), -1);
        assert_int_equal(lstat(p->address, &st), 0); /* the live one stays */
        assert_int_equal(notify_sweep(p->base), 0);

        /* nothing is swept in a directory others can write to */
        free(dead);
        dead = NULL;
        assert_int_equal(chmod(p->base, 0777), 0);
        fd = notify_socket_open(p->base, (gid_t) -1, &dead);
        close(fd);
        assert_int_equal(notify_sweep(p->base), 0);
        assert_int_equal(chmod(p->base, 0700), 0);
        assert_int_equal(notify_sweep(p->base), 1);
        free(dead);
}

static void test_socket_name_too_long(void **state) {
        char name[200];
        char *address = NULL;
        memset(name, 'n', sizeof(name) - 1);
        name[0] = '/';
        name[sizeof(name) - 1] = '\0';
        assert_int_equal(notify_socket_open(name, (gid_t) -1, &address), -ENAMETOOLONG);
        assert_null(address);
}

static void test_receive_nothing(void **state) {
        Peer *p = *state;
        struct ucred pid = { .pid = -7 };
        NotifyMessage m;
        const char *reason = NULL;
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_NOTHING);
}

static void test_receive_message(void **state) {
        Peer *p = *state;
        struct ucred pid = {};
        NotifyMessage m;
        const char *reason = NULL;

        peer_send(p, "READY=1\nSTATUS=listening on 2 sockets", strlen("READY=1\nSTATUS=listening on 2 sockets"));
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_RECEIVED);
        assert_int_equal(pid.pid, getpid());
        assert_int_equal(pid.uid, geteuid());
        assert_true(m.ready);
        assert_true(m.has_status);
        assert_string_equal(m.status, "listening on 2 sockets");
        assert_false(m.stopping);

        /* one datagram per call, in order */
        peer_send(p, "WATCHDOG=1", 10);
        peer_send(p, "STOPPING=1", 10);
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_RECEIVED);
        assert_true(m.watchdog);
        assert_false(m.stopping);
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_RECEIVED);
        assert_true(m.stopping);
        assert_false(m.watchdog);
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_NOTHING);
}

static void test_receive_drops_bad_datagrams(void **state) {
        Peer *p = *state;
        struct ucred pid = {};
        NotifyMessage m;
        const char *reason = NULL;

        static const char with_nul[] = "READY=1\0";
        peer_send(p, with_nul, sizeof(with_nul) - 1);
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_DROPPED);
        assert_int_equal(pid.pid, getpid());
        assert_int_equal(pid.uid, geteuid());
        assert_non_null(reason);

        char big[NOTIFY_MESSAGE_MAX + 100];
        memset(big, 'x', sizeof(big));
        memcpy(big, "READY=1\n", 8);
        pid = (struct ucred) {};
        reason = NULL;
        peer_send(p, big, sizeof(big));
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_DROPPED);
        assert_int_equal(pid.pid, getpid());
        assert_int_equal(pid.uid, geteuid());
        assert_non_null(reason);

        /* exactly NOTIFY_MESSAGE_MAX bytes are accepted */
        peer_send(p, big, NOTIFY_MESSAGE_MAX);
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_RECEIVED);
        assert_true(m.ready);

        /* nothing of the dropped ones is left behind */
        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_NOTHING);
}

static void test_receive_closes_passed_fds(void **state) {
        Peer *p = *state;
        struct ucred pid = {};
        NotifyMessage m;
        const char *reason = NULL;
        int pipefd[2];
        char c;

        assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
        unsigned before = count_fds();

        peer_send_fds(p, "READY=1", 7, &pipefd[1], 1);
        /* our own write end goes away: only the copy in flight keeps it open */
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &c, 1), -1);
        assert_int_equal(errno, EAGAIN);

        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_RECEIVED);
        assert_int_equal(pid.pid, getpid());
        assert_int_equal(pid.uid, geteuid());
        assert_true(m.ready);

        /* the manager's copy was closed: the read end sees EOF */
        assert_int_equal(read(pipefd[0], &c, 1), 0);
        assert_int_equal(count_fds(), before - 1);
        close(pipefd[0]);
}

static void test_receive_closes_fds_of_dropped_message(void **state) {
        Peer *p = *state;
        struct ucred pid = {};
        NotifyMessage m;
        const char *reason = NULL;
        int a[2], b[2];
        char c;

        assert_int_equal(pipe2(a, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(pipe2(b, O_CLOEXEC | O_NONBLOCK), 0);
        unsigned before = count_fds();

        /* several fds (one of them twice) on a message that is dropped */
        int fds[] = { a[1], b[1], a[1] };
        static const char with_nul[] = "READY=1\0x";
        peer_send_fds(p, with_nul, sizeof(with_nul) - 1, fds, ELEMENTSOF(fds));
        close(a[1]);
        close(b[1]);

        assert_int_equal(notify_receive(p->fd, &pid, &m, &reason), NOTIFY_DROPPED);
        assert_int_equal(pid.pid, getpid());
        assert_int_equal(pid.uid, geteuid());
        assert_non_null(reason);
        assert_int_equal(read(a[0], &c, 1), 0);
        assert_int_equal(read(b[0], &c, 1), 0);
        assert_int_equal(count_fds(), before - 2);
        close(a[0]);
        close(b[0]);
}

static void test_receive_bad_fd(void **state) {
        struct ucred pid = {};
        NotifyMessage m;
        const char *reason = NULL;
        assert_int_equal(notify_receive(-1, &pid, &m, &reason), -EBADF);
}

/* ---- notify_find_worker ---- */

typedef struct Accept {
        pid_t pids[4];
        size_t n;
        pid_t asked[40];
        size_t n_asked;
} Accept;

static bool is_worker(pid_t pid, void *userdata) {
        Accept *a = userdata;
        if (a->n_asked < ELEMENTSOF(a->asked))
                a->asked[a->n_asked++] = pid;
        for (size_t i = 0; i < a->n; i++)
                if (a->pids[i] == pid)
                        return true;
        return false;
}

static void test_find_worker_self(void **state) {
        Accept a = { .pids = { getppid(), getpid() }, .n = 2 };
        assert_int_equal(notify_find_worker(getpid(), is_worker, &a), getpid());
        assert_int_equal(a.n_asked, 1);
}

static void test_find_worker_parent(void **state) {
        if (getppid() <= 1)
                skip_or_fail("the parent is pid 1, where the walk stops");
        Accept a = { .pids = { getppid() }, .n = 1 };
        assert_int_equal(notify_find_worker(getpid(), is_worker, &a), getppid());
        assert_int_equal(a.n_asked, 2);
        assert_int_equal(a.asked[0], getpid());
        assert_int_equal(a.asked[1], getppid());
}

static void test_find_worker_none(void **state) {
        Accept a = { .n = 0 };
        assert_int_equal(notify_find_worker(getpid(), is_worker, &a), 0);
        /* it walked up but never asked about pid 1 and never looped forever */
        assert_true(a.n_asked >= 1 && a.n_asked <= 32);
        for (size_t i = 0; i < a.n_asked; i++)
                assert_true(a.asked[i] > 1);

        Accept none = { .n = 0 };
        assert_int_equal(notify_find_worker(0, is_worker, &none), 0);
        assert_int_equal(notify_find_worker(1, is_worker, &none), 0);
        assert_int_equal(none.n_asked, 0);

        /* a pid that does not exist: asked once, then no parent */
        Accept gone = { .n = 0 };
        assert_int_equal(notify_find_worker(0x3fffffff, is_worker, &gone), 0);
        assert_int_equal(gone.n_asked, 1);
}

/* A helper process of a worker (here: a child of the test) is mapped to the
 * worker, even when its name is made to look like the end of the comm field
 * in /proc/PID/stat. */
static void test_find_worker_from_child(void **state) {
        int sync[2];
        assert_int_equal(pipe2(sync, O_CLOEXEC), 0);

        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                (void) prctl(PR_SET_NAME, "x) Z 1 (y");
                (void) !write(sync[1], "x", 1);
                for (;;)
                        pause();
        }
        close(sync[1]);
        char c;
        assert_int_equal(read(sync[0], &c, 1), 1);
        close(sync[0]);

        Accept a = { .pids = { getpid() }, .n = 1 };
        pid_t found = notify_find_worker(child, is_worker, &a);

        Accept b = { .pids = { child, getpid() }, .n = 2 };
        pid_t found_child = notify_find_worker(child, is_worker, &b);

        kill(child, SIGKILL);
        assert_int_equal(waitpid(child, NULL, 0), child);

        assert_int_equal(found, getpid());
        assert_int_equal(a.asked[0], child);
        assert_int_equal(a.asked[1], getpid());
        assert_int_equal(found_child, child);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_single_fields),
                cmocka_unit_test(test_parse_several_fields),
                cmocka_unit_test(test_parse_ignores_unknown_and_wrong_values),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_parse_status_control_characters),
                cmocka_unit_test(test_parse_long_status_truncated),
                cmocka_unit_test_setup_teardown(test_socket_address, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_socket_group, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_sweep, peer_setup, peer_teardown),
                cmocka_unit_test(test_socket_name_too_long),
                cmocka_unit_test_setup_teardown(test_receive_nothing, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_receive_message, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_receive_drops_bad_datagrams, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_receive_closes_passed_fds, peer_setup, peer_teardown),
                cmocka_unit_test_setup_teardown(test_receive_closes_fds_of_dropped_message, peer_setup, peer_teardown),
                cmocka_unit_test(test_receive_bad_fd),
                cmocka_unit_test(test_find_worker_self),
                cmocka_unit_test(test_find_worker_parent),
                cmocka_unit_test(test_find_worker_none),
                cmocka_unit_test(test_find_worker_from_child),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
