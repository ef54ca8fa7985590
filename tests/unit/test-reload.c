/* The rolling reload transaction as pure transitions: batching, commit,
 * abort (rollback input), growth and shrink plans, batch parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sockherd/reload.h"

static void init(ReloadPlan *p, const bool *targets, unsigned n, unsigned batch) {
        assert_int_equal(reload_plan_init(p, targets, n, batch), 0);
}

static void test_one_at_a_time(void **state) {
        bool t[3] = { true, true, true };
        ReloadPlan p;
        init(&p, t, 3, 1);

        assert_int_equal(reload_plan_next(&p), 0);
        assert_int_equal(reload_plan_next(&p), -1);     /* batch full */
        reload_plan_ready(&p, 0);
        assert_int_equal(p.slots[0], RELOAD_SLOT_SWITCHED);
        assert_int_equal(p.state, RELOAD_RUNNING);
        assert_int_equal(reload_plan_next(&p), 1);
        reload_plan_ready(&p, 1);
        assert_int_equal(reload_plan_next(&p), 2);
        assert_int_equal(reload_plan_next(&p), -1);
        reload_plan_ready(&p, 2);
        assert_int_equal(p.state, RELOAD_COMMITTED);
        assert_int_equal(reload_plan_next(&p), -1);
        assert_int_equal(reload_plan_count(&p, RELOAD_SLOT_SWITCHED), 3);
        reload_plan_done(&p);
}

static void test_batches(void **state) {
        bool t[5] = { true, true, true, true, true };
        ReloadPlan p;
        init(&p, t, 5, 2);

        assert_int_equal(reload_plan_next(&p), 0);
        assert_int_equal(reload_plan_next(&p), 1);
        assert_int_equal(reload_plan_next(&p), -1);
        /* out of order readiness frees a place in the batch */
        reload_plan_ready(&p, 1);
        assert_int_equal(reload_plan_next(&p), 2);
        assert_int_equal(reload_plan_next(&p), -1);
        assert_int_equal(p.starting, 2);
        reload_plan_done(&p);
}

static void test_abort_abandons_starting_and_keeps_switched(void **state) {
        bool t[4] = { true, true, true, true };
        ReloadPlan p;
        init(&p, t, 4, 2);

        assert_int_equal(reload_plan_next(&p), 0);
        assert_int_equal(reload_plan_next(&p), 1);
        reload_plan_ready(&p, 0);
        assert_int_equal(reload_plan_next(&p), 2);
        reload_plan_failed(&p, 2);
        assert_int_equal(p.state, RELOAD_ABORTED);
        assert_int_equal(p.slots[0], RELOAD_SLOT_SWITCHED);     /* to roll back */
        assert_int_equal(p.slots[1], RELOAD_SLOT_ABANDONED);    /* to stop */
        assert_int_equal(p.slots[2], RELOAD_SLOT_ABANDONED);
        assert_int_equal(p.slots[3], RELOAD_SLOT_WAITING);      /* never touched: old keeps serving */
        assert_int_equal(p.starting, 0);
        /* nothing starts after an abort, late events change nothing */
        assert_int_equal(reload_plan_next(&p), -1);
        reload_plan_ready(&p, 1);
        assert_int_equal(p.slots[1], RELOAD_SLOT_ABANDONED);
        assert_int_equal(p.state, RELOAD_ABORTED);
        reload_plan_done(&p);
}

static void test_failure_of_a_slot_not_starting_is_ignored(void **state) {
        bool t[2] = { true, true };
        ReloadPlan p;
        init(&p, t, 2, 1);

        assert_int_equal(reload_plan_next(&p), 0);
        reload_plan_ready(&p, 0);
        reload_plan_failed(&p, 0);      /* a switched worker crashing later is a respawn, not an abort */
        assert_int_equal(p.state, RELOAD_RUNNING);
        reload_plan_failed(&p, 7);      /* out of range */
        assert_int_equal(p.state, RELOAD_RUNNING);
        reload_plan_done(&p);
}

static void test_shrink_plan(void **state) {
        /* 4 -> 2 workers: slots 2 and 3 get no new worker */
        bool t[4] = { true, true, false, false };
        ReloadPlan p;
        init(&p, t, 4, 4);

        assert_int_equal(reload_plan_targets(&p), 2);
        assert_int_equal(reload_plan_next(&p), 0);
        assert_int_equal(reload_plan_next(&p), 1);
        assert_int_equal(reload_plan_next(&p), -1);
        reload_plan_ready(&p, 0);
        reload_plan_ready(&p, 1);
        assert_int_equal(p.state, RELOAD_COMMITTED);
        assert_int_equal(p.slots[2], RELOAD_SLOT_UNTOUCHED);
        reload_plan_done(&p);
}

static void test_rollback_plan_targets_only_switched(void **state) {
        /* a rollback is a plan over the switched slots of the failed one */
        bool t[4] = { true, false, true, false };
        ReloadPlan p;
        init(&p, t, 4, 1);
        assert_int_equal(reload_plan_next(&p), 0);
        reload_plan_ready(&p, 0);
        assert_int_equal(reload_plan_next(&p), 2);
        reload_plan_ready(&p, 2);
        assert_int_equal(p.state, RELOAD_COMMITTED);
        reload_plan_done(&p);
}

static void test_empty_plan_is_committed(void **state) {
        bool t[2] = { false, false };
        ReloadPlan p;
        init(&p, t, 2, 1);
        assert_int_equal(p.state, RELOAD_COMMITTED);
        assert_int_equal(reload_plan_next(&p), -1);
        reload_plan_done(&p);
}

static void test_batch_parse_and_resolve(void **state) {
        unsigned v;
        bool pct;

        assert_int_equal(reload_batch_parse("3", &v, &pct), 0);
        assert_int_equal(v, 3);
        assert_false(pct);
        assert_int_equal(reload_batch_parse("25%", &v, &pct), 0);
        assert_int_equal(v, 25);
        assert_true(pct);
        assert_true(reload_batch_parse("0", &v, &pct) < 0);
        assert_true(reload_batch_parse("101%", &v, &pct) < 0);
        assert_true(reload_batch_parse("%", &v, &pct) < 0);
        assert_true(reload_batch_parse("", &v, &pct) < 0);
        assert_true(reload_batch_parse("x%", &v, &pct) < 0);

        assert_int_equal(reload_batch_resolve(25, true, 4), 1);
        assert_int_equal(reload_batch_resolve(25, true, 5), 2);   /* rounded up */
        assert_int_equal(reload_batch_resolve(25, true, 1), 1);
        assert_int_equal(reload_batch_resolve(100, true, 8), 8);
        assert_int_equal(reload_batch_resolve(10, false, 4), 4);  /* capped at the pool */
        assert_int_equal(reload_batch_resolve(2, false, 4), 2);
        assert_int_equal(reload_batch_resolve(1, true, 0), 1);
}

static void test_coalescing(void **state) {
        ReloadQueue q = {};

        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_START);
        /* three requests during the run collapse into one */
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_true(reload_queue_end(&q));      /* the queued one starts */
        assert_true(q.running);
        assert_false(reload_queue_end(&q));     /* and nothing after it */
        assert_false(q.running);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_START);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_at_a_time),
                cmocka_unit_test(test_batches),
                cmocka_unit_test(test_abort_abandons_starting_and_keeps_switched),
                cmocka_unit_test(test_failure_of_a_slot_not_starting_is_ignored),
                cmocka_unit_test(test_shrink_plan),
                cmocka_unit_test(test_rollback_plan_targets_only_switched),
                cmocka_unit_test(test_empty_plan_is_committed),
                cmocka_unit_test(test_batch_parse_and_resolve),
                cmocka_unit_test(test_coalescing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
