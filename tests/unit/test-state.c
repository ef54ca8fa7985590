/* The re-exec state format: a round trip keeps everything, older and
 * newer writers are handled as the format promises, and malformed input
 * is refused with the line named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sockherd/state.h"

static int read_text(const char *text, State *s, char *err, size_t size) {
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        assert_non_null(f);
        ErrorText e = {};
        int r = state_read(f, s, &e);
        fclose(f);
        size_t n = strnlen(e.message, size - 1);
        memcpy(err, e.message, n);
        err[n] = '\0';
        return r;
}

static void test_round_trip(void **state) {
        State in = {
                .generation = 7, .last_generation = 9, .requests = 12, .announced_ready = true,
                .passed_in = false, .notify_fd = 5, .control_fd = 6, .control_uid = 0, .n_slots = 3,
                .http_fd = 19,
        };
        strcpy(in.http_path, "/run/app/http sock");
        strcpy(in.reload_error, "app.conf:3: invalid value 'x y' for key 'workers'\nsecond line");
        strcpy(in.notify_address, "@sockherd/app/123/abc/notify");
        strcpy(in.control_path, "/run/sockherd/app/control");
        strcpy(in.working_directory, "/srv/app/current");
        strcpy(in.working_directory_resolved, "/srv/app/releases/r 1");
        StateSocket sock = { .fd = 3, .backlog_taken = 4096 };
        strcpy(sock.name, "listen");
        strcpy(sock.unlink_path, "/run/app sock");
        assert_int_equal(state_add_socket(&in, &sock), 0);
        StateSocket sock2 = { .fd = 4 };
        strcpy(sock2.name, "-");        /* a name that looks like the empty marker */
        assert_int_equal(state_add_socket(&in, &sock2), 0);
        StateSlot slots[3] = { { 1, 0, 0 }, { 0, 2, 1 }, { 5, 3, 0 } };
        strcpy(in.balance, "least-connections");
        strcpy(in.balance_reason, "the default for TCP: the kernel allows its BPF programs");
        assert_int_equal(state_add_balancer(&in, &(StateBalancer) { 0, { 20, 21, 22, 23, 24, 25 } }), 0);
        in.slots = malloc(sizeof(slots));
        memcpy(in.slots, slots, sizeof(slots));
        StateWorker w1 = { STATE_ROLE_SERVING, 0, 100, 7, WORKER_READY, 123456789, 0, "" };
        strcpy(w1.status, "serving on 1 socket(s)");
        StateWorker w2 = { STATE_ROLE_SERVING, 2, 101, 7, WORKER_STARTING, 5, 99999, "" };
        StateWorker w3 = { STATE_ROLE_RETIRING, 1, 102, 6, WORKER_STOPPING, 4, 0, "" };
        assert_int_equal(state_add_worker(&in, &w1), 0);
        assert_int_equal(state_add_worker(&in, &w2), 0);
        assert_int_equal(state_add_worker(&in, &w3), 0);
        assert_int_equal(state_add_slot_socket(&in, &(StateSlotSocket) { 1, 0, 17 }), 0);
        assert_int_equal(state_add_slot_socket(&in, &(StateSlotSocket) { 2, 1, 18 }), 0);

        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_int_equal(state_write(&in, f), 0);
        fclose(f);

        State out;
        char err[256] = "";
        assert_int_equal(read_text(buf, &out, err, sizeof(err)), 0);
        assert_int_equal(out.version, 1);
        assert_int_equal(out.generation, 7);
        assert_int_equal(out.last_generation, 9);
        assert_int_equal(out.requests, 12);
        assert_true(out.announced_ready);
        assert_false(out.passed_in);
        assert_string_equal(out.reload_error, in.reload_error);
        assert_int_equal(out.notify_fd, 5);
        assert_string_equal(out.notify_address, in.notify_address);
        assert_int_equal(out.control_fd, 6);
        assert_string_equal(out.control_path, in.control_path);
        /* root here: a manager that dropped root still lets only root in */
        assert_int_equal(out.control_uid, 0);
        assert_string_equal(out.working_directory, "/srv/app/current");
        assert_string_equal(out.working_directory_resolved, "/srv/app/releases/r 1");
        assert_int_equal(out.http_fd, 19);
        assert_string_equal(out.http_path, in.http_path);
        assert_int_equal(out.n_sockets, 2);
        assert_int_equal(out.sockets[0].fd, 3);
        assert_string_equal(out.sockets[0].name, "listen");
        assert_string_equal(out.sockets[0].unlink_path, "/run/app sock");
        assert_int_equal(out.sockets[0].backlog_taken, 4096);
        assert_string_equal(out.sockets[1].name, "-");
        assert_string_equal(out.sockets[1].unlink_path, "");
        assert_int_equal(out.n_slots, 3);
        assert_int_equal(out.slots[2].restarts, 5);
        assert_int_equal(out.slots[2].backoff_failures, 3);
        assert_int_equal(out.n_workers, 3);
        assert_int_equal(out.workers[0].pid, 100);
        assert_int_equal(out.workers[0].state, WORKER_READY);
        assert_int_equal(out.workers[0].started_usec, 123456789);
        assert_string_equal(out.workers[0].status, "serving on 1 socket(s)");
        assert_int_equal(out.workers[1].recycle_at_usec, 99999);
        assert_int_equal(out.workers[1].state, WORKER_STARTING);
        assert_string_equal(out.workers[1].status, "");
        assert_int_equal(out.workers[2].role, STATE_ROLE_RETIRING);
        assert_int_equal(out.workers[2].state, WORKER_STOPPING);
        assert_int_equal(out.n_slot_sockets, 2);
        assert_int_equal(out.slot_sockets[1].slot, 2);
        assert_int_equal(out.slot_sockets[1].index, 1);
        assert_int_equal(out.slot_sockets[1].fd, 18);
        assert_int_equal(out.slots[1].lane_flip, 1);
        assert_int_equal(out.slots[2].lane_flip, 0);
        assert_string_equal(out.balance, "least-connections");
        assert_string_equal(out.balance_reason, "the default for TCP: the kernel allows its BPF programs");
        assert_int_equal(out.n_balancers, 1);
        assert_int_equal(out.balancers[0].index, 0);
        assert_int_equal(out.balancers[0].fds[0], 20);
        assert_int_equal(out.balancers[0].fds[5], 25);

        state_done(&in);
        state_done(&out);
        free(buf);
}

/* a newer writer may add records; this reader skips what it does not know,
 * as long as the version is one it reads */
/* What an older sockherd (commit e8b50fa, before the notify socket moved
 * out of the abstract namespace) wrote at a real re-exec, captured from its
 * memfd by a wrapper standing in for the new binary; the current binary
 * then took over that pool (2 workers kept). The current reader must keep
 * reading it. */
static const char older_state[] =
        "sockherd-state 1\n"
        "generation 1 1\n"
        "requests 0\n"
        "flags 1 0\n"
        "reload-error -\n"
        "notify 7 @sockherd/app/12576/2dbb404153da72ff/notify\n"
        "control 8 /tmp/cap/ctl\n"
        "control-uid 0\n"
        "socket 3 listen -\n"
        "slots 2\n"
        "slot 0 0 0\n"
        "slot 1 0 0\n"
        "worker serving 0 12577 1 ready 2286069965 0 -\n"
        "worker serving 1 12578 1 ready 2286070174 0 -\n"
        "end\n";

static void test_older_writer(void **state) {
        State s;
        char err[256] = "";
        assert_int_equal(read_text(older_state, &s, err, sizeof(err)), 0);
        assert_int_equal(s.version, 1);
        assert_int_equal(s.generation, 1);
        assert_int_equal(s.last_generation, 1);
        assert_true(s.announced_ready);
        assert_false(s.passed_in);
        assert_int_equal(s.notify_fd, 7);
        assert_string_equal(s.notify_address, "@sockherd/app/12576/2dbb404153da72ff/notify");
        assert_int_equal(s.control_fd, 8);
        assert_string_equal(s.control_path, "/tmp/cap/ctl");
        assert_int_equal(s.control_uid, 0);
        assert_int_equal(s.n_sockets, 1);
        assert_int_equal(s.sockets[0].fd, 3);
        assert_string_equal(s.sockets[0].name, "listen");
        assert_string_equal(s.sockets[0].unlink_path, "");
        /* no backlog in its socket record: unknown */
        assert_int_equal(s.sockets[0].backlog_taken, 0);
        assert_int_equal(s.n_slots, 2);
        assert_int_equal(s.n_workers, 2);
        assert_int_equal(s.workers[0].pid, 12577);
        assert_int_equal(s.workers[0].slot, 0);
        assert_int_equal(s.workers[0].state, WORKER_READY);
        assert_int_equal(s.workers[0].role, STATE_ROLE_SERVING);
        assert_int_equal(s.workers[1].pid, 12578);
        assert_int_equal(s.workers[1].started_usec, 2286070174);
        /* no working-directory record: the new image resolves it again */
        assert_string_equal(s.working_directory_resolved, "");
        state_done(&s);
}

static void test_unknown_records_are_skipped(void **state) {
        const char *text =
                "sockherd-state 1\n"
                "generation 2 2\n"
                "notify 5 @n\n"
                "slots 1\n"
                "slot 0 0 0\n"
                "cgroup /sys/fs/cgroup/whatever\n"
                "worker serving 0 55 2 ready 1 0 -\n"
                "end\n";
        State s;
        char err[256];
        assert_int_equal(read_text(text, &s, err, sizeof(err)), 0);
        assert_int_equal(s.n_workers, 1);
        assert_int_equal(s.control_fd, -1);
        /* an older writer had no control-uid: the reader says so */
        assert_int_equal(s.control_uid, -1);
        /* nor an http-listen socket */
        assert_int_equal(s.http_fd, -1);
        state_done(&s);
}

static void test_refusals(void **state) {
        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "", "empty" },
                { "hello\n", "not a sockherd state" },
                { "sockherd-state 2\nend\n", "version 2 is not supported" },
                { "sockherd-state 1\ngeneration 1 1\nnotify 5 @n\nslots 1\n", "no 'end' record" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nworker serving 3 55 1 ready 1 0 -\nend\n", "line 4" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nworker serving 0 55 1 dancing 1 0 -\nend\n", "line 4: bad worker" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nworker serving 0 1 1 ready 1 0 -\nend\n", "line 4: bad worker" },
                { "sockherd-state 1\nslots 1\nend\n", "lacks its notify" },
                { "sockherd-state 1\nnotify x @n\nslots 1\nend\n", "line 2: bad notify" },
                { "sockherd-state 1\nnotify 5 @n\nslots 99999\nend\n", "line 3: bad slots" },
                { "sockherd-state 1\nnotify 5 @n\ncontrol-uid -3\nslots 1\nend\n", "line 3: bad control-uid" },
                { "sockherd-state 1\nnotify 5 @n\nworking-directory /a\nslots 1\nend\n", "line 3: bad working-directory" },
                { "sockherd-state 1\nnotify 5 @n\nworking-directory /a b\nslots 1\nend\n", "line 3: bad working-directory" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nslot 0 0 0 2\nend\n", "line 4: bad slot" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nbalancer 0 3 4 5 6 7\nend\n", "line 4: bad balancer" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nbalancer 0 3 4 5 6 7 -1\nend\n", "line 4: bad balancer" },
                { "sockherd-state 1\nnotify 5 @n\nslots 1\nbalancer 99 3 4 5 6 7 8\nend\n", "line 4: bad balancer" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                State s;
                char err[256] = "";
                int r = read_text(cases[i].text, &s, err, sizeof(err));
                if (r != -EBADMSG || !strstr(err, cases[i].message))
                        fail_msg("case %zu: r=%d err='%s', wanted '%s'", i, r, err, cases[i].message);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_older_writer),
                cmocka_unit_test(test_unknown_records_are_skipped),
                cmocka_unit_test(test_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
