/* pool-state.c: what a re-exec keeps of the pool (slots, their own sockets,
 * serving and retiring workers, what a retiring worker drains) and how the
 * new image takes the slots back. Descriptors are real (pipes), so that
 * CLOEXEC and closing can be checked. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockherd/pool-state.h"

/* A descriptor without CLOEXEC, as a re-exec hands them over. */
static int new_fd(void) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        close(p[1]);
        assert_int_equal(fcntl(p[0], F_SETFD, 0), 0);
        return p[0];
}

static bool is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static bool is_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);
        return flags >= 0 && (flags & FD_CLOEXEC);
}

static Worker *new_worker(pid_t pid, unsigned slot, uint64_t generation, WorkerState state) {
        Worker *w = calloc(1, sizeof(Worker));
        assert_non_null(w);
        *w = (Worker) { .pid = pid, .slot = slot, .generation = generation, .state = state,
                        .started_usec = 1000 + (uint64_t) pid };
        return w;
}

static const StateWorker *find_worker(const State *s, pid_t pid) {
        for (size_t i = 0; i < s->n_workers; i++)
                if (s->workers[i].pid == pid)
                        return &s->workers[i];
        return NULL;
}

static void test_record(void **unused) {
        ListenSocket socks[2] = {
                { .fd = 3, .name = (char *) "web", .unlink_path = NULL, .backlog_taken = 4096 },
                { .fd = 4, .name = (char *) "admin", .unlink_path = (char *) "/run/app/admin.sock" },
        };
        ListenSet sockets = { .sockets = socks, .n = 2, .passed_in = true };
        Pool pool = {};
        assert_int_equal(pool_resize(&pool, 3), 0);

        int slot1_fds[2] = { 17, -1 }, slot2_fds[2] = { 18, 19 };
        pool.slots[1].fds = slot1_fds;
        pool.slots[2].fds = slot2_fds;
        pool.slots[0].restarts = 4;
        pool.slots[1].backoff.failures = 2;
        pool.slots[2].lane_flip = 1;

        Worker *serving = new_worker(100, 0, 7, WORKER_READY);
        serving->recycle_at_usec = 555;
        strcpy(serving->status, "serving 12 connections");
        Worker *starting = new_worker(101, 2, 7, WORKER_STARTING);
        Worker *draining = new_worker(102, 1, 6, WORKER_READY);
        Worker *stopping = new_worker(103, 1, 5, WORKER_STOPPING);
        int drained[2] = { 30, 31 }, stopping_fds[1] = { 32 };
        draining->owned_fds = drained;
        draining->n_owned_fds = 2;
        stopping->owned_fds = stopping_fds;
        stopping->n_owned_fds = 1;
        pool.slots[0].worker = serving;
        pool.slots[2].worker = starting;
        assert_int_equal(pool_retire(&pool, draining), 0);
        assert_int_equal(pool_retire(&pool, stopping), 0);

        State s = {};
        assert_int_equal(pool_state_record(&pool, &sockets, &s), 0);

        assert_int_equal(s.n_sockets, 2);
        assert_int_equal(s.sockets[0].fd, 3);
        assert_string_equal(s.sockets[0].name, "web");
        assert_int_equal(s.sockets[0].backlog_taken, 4096);
        assert_string_equal(s.sockets[0].unlink_path, "");
        assert_string_equal(s.sockets[1].unlink_path, "/run/app/admin.sock");

        assert_int_equal(s.n_slots, 3);
        assert_int_equal(s.slots[0].restarts, 4);
        assert_int_equal(s.slots[1].backoff_failures, 2);
        assert_int_equal(s.slots[2].lane_flip, 1);
        /* slot 1's -1 is not a socket of its own */
        assert_int_equal(s.n_slot_sockets, 3);
        assert_int_equal(s.slot_sockets[0].slot, 1);
        assert_int_equal(s.slot_sockets[0].index, 0);
        assert_int_equal(s.slot_sockets[0].fd, 17);
        assert_int_equal(s.slot_sockets[2].slot, 2);
        assert_int_equal(s.slot_sockets[2].index, 1);
        assert_int_equal(s.slot_sockets[2].fd, 19);

        assert_int_equal(s.n_workers, 4);
        const StateWorker *w = find_worker(&s, 100);
        assert_non_null(w);
        assert_int_equal(w->role, STATE_ROLE_SERVING);
        assert_int_equal(w->state, WORKER_READY);
        assert_int_equal(w->recycle_at_usec, 555);
        assert_int_equal(w->started_usec, 1100);
        assert_string_equal(w->status, "serving 12 connections");
        w = find_worker(&s, 101);
        assert_int_equal(w->slot, 2);
        assert_int_equal(w->state, WORKER_STARTING);
        w = find_worker(&s, 102);
        assert_int_equal(w->role, STATE_ROLE_RETIRING);
        assert_int_equal(w->generation, 6);
        assert_int_equal(find_worker(&s, 103)->role, STATE_ROLE_RETIRING);
        /* a ready retiring worker goes on draining; a stopping one has
         * stopped taking connections: its sockets close with it */
        assert_int_equal(s.n_drain_sockets, 2);
        assert_int_equal(s.drain_sockets[0].pid, 102);
        assert_int_equal(s.drain_sockets[0].fd, 30);
        assert_int_equal(s.drain_sockets[1].fd, 31);

        state_done(&s);
        for (unsigned i = 0; i < pool.n_slots; i++)
                pool.slots[i].fds = NULL;
        free(serving);
        free(starting);
        free(draining);
        free(stopping);
        free(pool.retiring);
        pool.retiring = NULL;
        pool.n_retiring = 0;
        pool_done(&pool, 0);
}

/* The state's size wins over the config's (the pool had been scaled). */
static void restore_sized(unsigned configured, unsigned recorded) {
        Config *c = config_new();
        assert_non_null(c);
        Pool pool = {};
        assert_int_equal(pool_resize(&pool, configured), 0);
        for (unsigned i = 0; i < configured; i++) {
                pool.slots[i].config = config_ref(c);
                pool.slots[i].generation = 1;
        }

        State s = { .n_slots = recorded };
        s.slots = calloc(recorded, sizeof(StateSlot));
        assert_non_null(s.slots);
        for (unsigned i = 0; i < recorded; i++)
                s.slots[i] = (StateSlot) { .restarts = i + 1, .backoff_failures = 2 * i, .lane_flip = i & 1 };
        int own = new_fd(), beyond = new_fd(), last = new_fd();
        assert_int_equal(state_add_slot_socket(&s, &(StateSlotSocket) { 0, 1, own }), 0);
        /* a socket index this image does not have: closed */
        assert_int_equal(state_add_slot_socket(&s, &(StateSlotSocket) { 0, 2, beyond }), 0);
        assert_int_equal(state_add_slot_socket(&s, &(StateSlotSocket) { recorded - 1, 0, last }), 0);

        assert_int_equal(pool_state_restore_slots(&pool, 2, c, 9, &s), 0);

        assert_int_equal(pool.n_slots, recorded);
        for (unsigned i = 0; i < recorded; i++) {
                assert_ptr_equal(pool.slots[i].config, c);
                assert_int_equal(pool.slots[i].generation, 9);
                assert_int_equal(pool.slots[i].restarts, i + 1);
                assert_int_equal(pool.slots[i].backoff.failures, 2 * i);
                assert_int_equal(pool.slots[i].lane_flip, i & 1);
        }
        assert_non_null(pool.slots[0].fds);
        assert_int_equal(pool.slots[0].fds[0], recorded - 1 == 0 ? last : -1);
        assert_int_equal(pool.slots[0].fds[1], own);
        assert_true(is_cloexec(own));
        assert_true(is_cloexec(last));
        assert_false(is_open(beyond));
        assert_int_equal(pool.slots[recorded - 1].fds[0], last);
        for (unsigned i = 1; i + 1 < recorded; i++)
                assert_null(pool.slots[i].fds);

        pool_done(&pool, 2); /* drops the slots' configs, closes own and last */
        assert_false(is_open(own));
        assert_false(is_open(last));
        free(s.slots);
        s.slots = NULL;
        free(s.slot_sockets);
        s.slot_sockets = NULL;
        config_free(c);
}

static void test_restore_grown(void **unused) {
        restore_sized(2, 4);
}

static void test_restore_shrunk(void **unused) {
        restore_sized(4, 2);
}

static void test_restore_same_size(void **unused) {
        restore_sized(3, 3);
}

static void test_drain_sockets_go_to_their_worker(void **unused) {
        State s = {};
        int a = new_fd(), b = new_fd(), other = new_fd();
        assert_int_equal(state_add_drain_socket(&s, &(StateDrainSocket) { 102, a }), 0);
        assert_int_equal(state_add_drain_socket(&s, &(StateDrainSocket) { 103, other }), 0);
        assert_int_equal(state_add_drain_socket(&s, &(StateDrainSocket) { 102, b }), 0);
        Worker *w = new_worker(102, 1, 6, WORKER_READY);

        pool_state_take_drain_sockets(&s, w);

        assert_int_equal(w->n_owned_fds, 2);
        assert_int_equal(w->owned_fds[0], a);
        assert_int_equal(w->owned_fds[1], b);
        assert_true(is_cloexec(a));
        assert_true(is_cloexec(b));
        /* taken from the state; another worker's stays there */
        assert_int_equal(s.drain_sockets[0].fd, -1);
        assert_int_equal(s.drain_sockets[2].fd, -1);
        assert_int_equal(s.drain_sockets[1].fd, other);
        assert_false(is_cloexec(other));

        worker_close_owned_fds(w);
        assert_false(is_open(a));
        free(w);
        close(other);
        free(s.drain_sockets);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record),
                cmocka_unit_test(test_restore_grown),
                cmocka_unit_test(test_restore_shrunk),
                cmocka_unit_test(test_restore_same_size),
                cmocka_unit_test(test_drain_sockets_go_to_their_worker),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
