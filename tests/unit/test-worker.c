/* Unit tests for worker.c: every (state, ready mode, event) combination of
 * the worker state machine, a few whole lives, and the timer lengths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sockherd/config.h"
#include "sockherd/util.h"
#include "sockherd/worker.h"

#define M_NOTIFY (1u << READY_NOTIFY)
#define M_EXEC   (1u << READY_EXEC)
#define M_ALIVE  (1u << READY_ALIVE)
#define M_ALL    (M_NOTIFY | M_EXEC | M_ALIVE)

enum {
        BECAME_READY = WORKER_ACTION_BECAME_READY,
        SEND_STOP = WORKER_ACTION_SEND_STOP,
        KILL = WORKER_ACTION_KILL,
        SET_TIMER = WORKER_ACTION_SET_TIMER,
        READY_FAILED = WORKER_ACTION_READY_FAILED,
        SEND_ABORT = WORKER_ACTION_SEND_ABORT,
};

typedef struct Transition {
        WorkerState from;
        unsigned modes;
        WorkerEvent event;
        WorkerState to;
        unsigned actions;
        WorkerTimer timer;
} Transition;

/* The complete table: every (state, mode, event) is matched by exactly one
 * row (checked by test_table_is_complete). */
static const Transition table[] = {
        /* STARTING */
        { WORKER_STARTING, M_EXEC,   WORKER_EVENT_STARTED, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
        { WORKER_STARTING, M_ALIVE,  WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER, WORKER_TIMER_ALIVE },
        { WORKER_STARTING, M_NOTIFY, WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER, WORKER_TIMER_READY_TIMEOUT },
        /* READY=1 is the strongest signal in every mode */
        { WORKER_STARTING, M_ALL, WORKER_EVENT_NOTIFY_READY, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
        { WORKER_STARTING, M_ALIVE, WORKER_EVENT_TIMER, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
        /* the ready timeout (exec never arms a timer while starting) */
        { WORKER_STARTING, M_NOTIFY | M_EXEC, WORKER_EVENT_TIMER, WORKER_STOPPING,
          SEND_STOP | SET_TIMER | READY_FAILED, WORKER_TIMER_STOP_TIMEOUT },
        { WORKER_STARTING, M_ALL, WORKER_EVENT_STOP, WORKER_STOPPING, SEND_STOP | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
        { WORKER_STARTING, M_ALL, WORKER_EVENT_NOTIFY_STOPPING, WORKER_STOPPING, SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
        { WORKER_STARTING, M_ALL, WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },

        /* READY */
        { WORKER_READY, M_ALL, WORKER_EVENT_STARTED, WORKER_READY, 0, WORKER_TIMER_NONE },
        { WORKER_READY, M_ALL, WORKER_EVENT_NOTIFY_READY, WORKER_READY, 0, WORKER_TIMER_NONE },
        { WORKER_READY, M_ALL, WORKER_EVENT_TIMER, WORKER_READY, 0, WORKER_TIMER_NONE },
        { WORKER_READY, M_ALL, WORKER_EVENT_STOP, WORKER_STOPPING, SEND_STOP | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
        /* leaving on its own: no signal, but a deadline */
        { WORKER_READY, M_ALL, WORKER_EVENT_NOTIFY_STOPPING, WORKER_STOPPING, SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
        { WORKER_READY, M_ALL, WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
        /* a missed watchdog: SIGABRT, then SIGKILL after the stop timeout */
        { WORKER_READY, M_ALL, WORKER_EVENT_WATCHDOG, WORKER_STOPPING, SEND_ABORT | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
        /* the watchdog only runs while ready */
        { WORKER_STARTING, M_ALL, WORKER_EVENT_WATCHDOG, WORKER_STARTING, 0, WORKER_TIMER_NONE },
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_WATCHDOG, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_WATCHDOG, WORKER_EXITED, 0, WORKER_TIMER_NONE },

        /* STOPPING */
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_STARTED, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_NOTIFY_READY, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_NOTIFY_STOPPING, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_TIMER, WORKER_STOPPING, KILL | SET_TIMER, WORKER_TIMER_NONE },
        /* a second stop: it was told already; keep the running deadline */
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_STOP, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
        { WORKER_STOPPING, M_ALL, WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },

        /* EXITED */
        { WORKER_EXITED, M_ALL, WORKER_EVENT_STARTED, WORKER_EXITED, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_NOTIFY_READY, WORKER_EXITED, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_NOTIFY_STOPPING, WORKER_EXITED, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_TIMER, WORKER_EXITED, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_STOP, WORKER_EXITED, 0, WORKER_TIMER_NONE },
        { WORKER_EXITED, M_ALL, WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
};

static const WorkerState all_states[] = { WORKER_STARTING, WORKER_READY, WORKER_STOPPING, WORKER_EXITED };
static const ReadyMode all_modes[] = { READY_NOTIFY, READY_EXEC, READY_ALIVE };
static const WorkerEvent all_events[] = {
        WORKER_EVENT_STARTED, WORKER_EVENT_NOTIFY_READY, WORKER_EVENT_NOTIFY_STOPPING,
        WORKER_EVENT_TIMER,   WORKER_EVENT_STOP,         WORKER_EVENT_EXITED,
        WORKER_EVENT_WATCHDOG,
};

static const char *event_name(WorkerEvent e) {
        static const char *const names[] = {
                [WORKER_EVENT_STARTED] = "STARTED", [WORKER_EVENT_NOTIFY_READY] = "NOTIFY_READY",
                [WORKER_EVENT_NOTIFY_STOPPING] = "NOTIFY_STOPPING", [WORKER_EVENT_TIMER] = "TIMER",
                [WORKER_EVENT_STOP] = "STOP", [WORKER_EVENT_EXITED] = "EXITED",
                [WORKER_EVENT_WATCHDOG] = "WATCHDOG",
        };
        return names[e];
}

static void check_step(WorkerState from, ReadyMode mode, WorkerEvent event, WorkerState to, unsigned actions,
                       WorkerTimer timer) {
        WorkerStep s = worker_step(from, mode, event);
        if (s.state != to || s.actions != actions || s.timer != timer)
                fail_msg("%s + %s (ready=%s): got state %s actions 0x%x timer %d, expected state %s "
                         "actions 0x%x timer %d",
                         worker_state_to_string(from), event_name(event), ready_mode_to_string(mode),
                         worker_state_to_string(s.state), s.actions, (int) s.timer,
                         worker_state_to_string(to), actions, (int) timer);
}

static void test_table_is_complete(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(all_states); i++)
                for (size_t j = 0; j < ELEMENTSOF(all_modes); j++)
                        for (size_t k = 0; k < ELEMENTSOF(all_events); k++) {
                                unsigned matches = 0;
                                for (size_t t = 0; t < ELEMENTSOF(table); t++)
                                        if (table[t].from == all_states[i] &&
                                            (table[t].modes & (1u << all_modes[j])) &&
                                            table[t].event == all_events[k])
                                                matches++;
                                if (matches != 1)
                                        fail_msg("%s + %s (ready=%s) has %u rows in the table",
                                                 worker_state_to_string(all_states[i]),
                                                 event_name(all_events[k]),
                                                 ready_mode_to_string(all_modes[j]), matches);
                        }
}

static void test_every_transition(void **state) {
        for (size_t t = 0; t < ELEMENTSOF(table); t++)
                for (size_t j = 0; j < ELEMENTSOF(all_modes); j++)
                        if (table[t].modes & (1u << all_modes[j]))
                                check_step(table[t].from, all_modes[j], table[t].event, table[t].to,
                                           table[t].actions, table[t].timer);
}

/* The transitions the manager relies on most, spelled out one by one. */
static void test_started(void **state) {
        check_step(WORKER_STARTING, READY_EXEC, WORKER_EVENT_STARTED, WORKER_READY, BECAME_READY | SET_TIMER,
                   WORKER_TIMER_NONE);
        check_step(WORKER_STARTING, READY_ALIVE, WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER,
                   WORKER_TIMER_ALIVE);
        check_step(WORKER_STARTING, READY_NOTIFY, WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER,
                   WORKER_TIMER_READY_TIMEOUT);
}

static void test_timer_while_starting(void **state) {
        check_step(WORKER_STARTING, READY_ALIVE, WORKER_EVENT_TIMER, WORKER_READY, BECAME_READY | SET_TIMER,
                   WORKER_TIMER_NONE);
        check_step(WORKER_STARTING, READY_NOTIFY, WORKER_EVENT_TIMER, WORKER_STOPPING,
                   SEND_STOP | READY_FAILED | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT);
}

static void test_notify_ready_while_starting(void **state) {
        for (size_t j = 0; j < ELEMENTSOF(all_modes); j++)
                check_step(WORKER_STARTING, all_modes[j], WORKER_EVENT_NOTIFY_READY, WORKER_READY,
                           BECAME_READY | SET_TIMER, WORKER_TIMER_NONE);
}

static void test_stop(void **state) {
        for (size_t j = 0; j < ELEMENTSOF(all_modes); j++) {
                check_step(WORKER_READY, all_modes[j], WORKER_EVENT_STOP, WORKER_STOPPING, SEND_STOP | SET_TIMER,
                           WORKER_TIMER_STOP_TIMEOUT);
                check_step(WORKER_STARTING, all_modes[j], WORKER_EVENT_STOP, WORKER_STOPPING,
                           SEND_STOP | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT);
                check_step(WORKER_STOPPING, all_modes[j], WORKER_EVENT_TIMER, WORKER_STOPPING, KILL | SET_TIMER,
                           WORKER_TIMER_NONE);
        }
}

static void test_exited_from_any_state(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(all_states); i++)
                for (size_t j = 0; j < ELEMENTSOF(all_modes); j++)
                        check_step(all_states[i], all_modes[j], WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER,
                                   WORKER_TIMER_NONE);
}

static void test_no_op_events(void **state) {
        for (size_t j = 0; j < ELEMENTSOF(all_modes); j++) {
                ReadyMode m = all_modes[j];
                check_step(WORKER_READY, m, WORKER_EVENT_NOTIFY_READY, WORKER_READY, 0, WORKER_TIMER_NONE);
                check_step(WORKER_READY, m, WORKER_EVENT_TIMER, WORKER_READY, 0, WORKER_TIMER_NONE);
                check_step(WORKER_READY, m, WORKER_EVENT_STARTED, WORKER_READY, 0, WORKER_TIMER_NONE);
                check_step(WORKER_STOPPING, m, WORKER_EVENT_NOTIFY_READY, WORKER_STOPPING, 0, WORKER_TIMER_NONE);
                check_step(WORKER_STOPPING, m, WORKER_EVENT_NOTIFY_STOPPING, WORKER_STOPPING, 0,
                           WORKER_TIMER_NONE);
                for (size_t k = 0; k < ELEMENTSOF(all_events); k++)
                        if (all_events[k] != WORKER_EVENT_EXITED)
                                check_step(WORKER_EXITED, m, all_events[k], WORKER_EXITED, 0, WORKER_TIMER_NONE);
        }
}

/* Invariants over the whole space: a timer is only named together with
 * SET_TIMER, and only the ready transitions count a worker as serving. */
static void test_invariants(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(all_states); i++)
                for (size_t j = 0; j < ELEMENTSOF(all_modes); j++)
                        for (size_t k = 0; k < ELEMENTSOF(all_events); k++) {
                                WorkerStep s = worker_step(all_states[i], all_modes[j], all_events[k]);
                                if (!(s.actions & SET_TIMER))
                                        assert_int_equal(s.timer, WORKER_TIMER_NONE);
                                if (s.actions & BECAME_READY) {
                                        assert_int_equal(all_states[i], WORKER_STARTING);
                                        assert_int_equal(s.state, WORKER_READY);
                                }
                                if (s.actions & (KILL | READY_FAILED))
                                        assert_int_equal(s.state, WORKER_STOPPING);
                                if (all_states[i] == WORKER_EXITED)
                                        assert_int_equal(s.state, WORKER_EXITED);
                        }
}

typedef struct Life {
        WorkerEvent event;
        WorkerState state;
        unsigned actions;
        WorkerTimer timer;
} Life;

static void live(ReadyMode mode, const Life *steps, size_t n) {
        WorkerState s = WORKER_STARTING;
        for (size_t i = 0; i < n; i++) {
                check_step(s, mode, steps[i].event, steps[i].state, steps[i].actions, steps[i].timer);
                s = steps[i].state;
        }
}

static void test_whole_lives(void **state) {
        /* notify: ready, stopped, does not go, killed, reaped */
        const Life notify[] = {
                { WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER, WORKER_TIMER_READY_TIMEOUT },
                { WORKER_EVENT_NOTIFY_READY, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
                { WORKER_EVENT_STOP, WORKER_STOPPING, SEND_STOP | SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
                { WORKER_EVENT_TIMER, WORKER_STOPPING, KILL | SET_TIMER, WORKER_TIMER_NONE },
                { WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
        };
        live(READY_NOTIFY, notify, ELEMENTSOF(notify));

        /* alive: ready by timer, leaves on its own */
        const Life alive[] = {
                { WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER, WORKER_TIMER_ALIVE },
                { WORKER_EVENT_TIMER, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
                { WORKER_EVENT_NOTIFY_STOPPING, WORKER_STOPPING, SET_TIMER, WORKER_TIMER_STOP_TIMEOUT },
                { WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
        };
        live(READY_ALIVE, alive, ELEMENTSOF(alive));

        /* notify: never ready */
        const Life missed[] = {
                { WORKER_EVENT_STARTED, WORKER_STARTING, SET_TIMER, WORKER_TIMER_READY_TIMEOUT },
                { WORKER_EVENT_TIMER, WORKER_STOPPING, SEND_STOP | SET_TIMER | READY_FAILED,
                  WORKER_TIMER_STOP_TIMEOUT },
                { WORKER_EVENT_NOTIFY_READY, WORKER_STOPPING, 0, WORKER_TIMER_NONE },
                { WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
        };
        live(READY_NOTIFY, missed, ELEMENTSOF(missed));

        /* exec: ready at once, crashes */
        const Life exec[] = {
                { WORKER_EVENT_STARTED, WORKER_READY, BECAME_READY | SET_TIMER, WORKER_TIMER_NONE },
                { WORKER_EVENT_EXITED, WORKER_EXITED, SET_TIMER, WORKER_TIMER_NONE },
        };
        live(READY_EXEC, exec, ELEMENTSOF(exec));
}

static void test_timer_usec(void **state) {
        _cleanup_config_ Config *c = config_new();
        assert_non_null(c);
        c->ready_alive_usec = 1111;
        c->ready_timeout_usec = 2222;
        c->stop_timeout_usec = 3333;

        assert_int_equal(worker_timer_usec(WORKER_TIMER_ALIVE, c), 1111);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_READY_TIMEOUT, c), 2222);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_STOP_TIMEOUT, c), 3333);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_NONE, c), USEC_INFINITY);

        /* the defaults */
        _cleanup_config_ Config *d = config_new();
        assert_non_null(d);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_ALIVE, d), 1 * USEC_PER_SEC);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_READY_TIMEOUT, d), 60 * USEC_PER_SEC);
        assert_int_equal(worker_timer_usec(WORKER_TIMER_STOP_TIMEOUT, d), 30 * USEC_PER_SEC);
}

static void test_state_names(void **state) {
        assert_string_equal(worker_state_to_string(WORKER_STARTING), "starting");
        assert_string_equal(worker_state_to_string(WORKER_READY), "ready");
        assert_string_equal(worker_state_to_string(WORKER_STOPPING), "stopping");
        assert_string_equal(worker_state_to_string(WORKER_EXITED), "exited");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_is_complete),
                cmocka_unit_test(test_every_transition),
                cmocka_unit_test(test_started),
                cmocka_unit_test(test_timer_while_starting),
                cmocka_unit_test(test_notify_ready_while_starting),
                cmocka_unit_test(test_stop),
                cmocka_unit_test(test_exited_from_any_state),
                cmocka_unit_test(test_no_op_events),
                cmocka_unit_test(test_invariants),
                cmocka_unit_test(test_whole_lives),
                cmocka_unit_test(test_timer_usec),
                cmocka_unit_test(test_state_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
