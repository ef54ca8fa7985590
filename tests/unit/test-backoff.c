/* Unit tests for backoff.c: the respawn delay of one slot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sockherd/backoff.h"
#include "sockherd/util.h"

/* the defaults of config_new(): 100ms, 10s, 10s */
static const BackoffPolicy policy = {
        .initial_usec = 100 * USEC_PER_MSEC,
        .max_usec = 10 * USEC_PER_SEC,
        .stable_usec = 10 * USEC_PER_SEC,
};

#define SHORT_RUN (50 * USEC_PER_MSEC)

static void test_first_delay_is_initial(void **state) {
        Backoff b = {};
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 100 * USEC_PER_MSEC);

        /* also when the very first worker failed at once */
        Backoff c = {};
        assert_int_equal(backoff_next(&c, &policy, 0), 100 * USEC_PER_MSEC);
}

static void test_doubling(void **state) {
        Backoff b = {};
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 100 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 200 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 400 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 800 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 1600 * USEC_PER_MSEC);
}

static void test_capped_at_max(void **state) {
        Backoff b = {};
        const uint64_t expected[] = {
                100 * USEC_PER_MSEC, 200 * USEC_PER_MSEC, 400 * USEC_PER_MSEC, 800 * USEC_PER_MSEC,
                1600 * USEC_PER_MSEC, 3200 * USEC_PER_MSEC, 6400 * USEC_PER_MSEC,
                10 * USEC_PER_SEC, 10 * USEC_PER_SEC, 10 * USEC_PER_SEC,
        };
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), expected[i]);

        /* and stays there however long the failures go on */
        for (unsigned i = 0; i < 1000; i++)
                assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 10 * USEC_PER_SEC);
}

static void test_stable_run_resets(void **state) {
        Backoff b = {};
        for (unsigned i = 0; i < 20; i++)
                backoff_next(&b, &policy, SHORT_RUN);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 10 * USEC_PER_SEC);

        /* exactly the stable time counts as stable */
        assert_int_equal(backoff_next(&b, &policy, 10 * USEC_PER_SEC), 100 * USEC_PER_MSEC);

        for (unsigned i = 0; i < 20; i++)
                backoff_next(&b, &policy, SHORT_RUN);
        assert_int_equal(backoff_next(&b, &policy, 3600 * USEC_PER_SEC), 100 * USEC_PER_MSEC);

        /* just below it does not */
        for (unsigned i = 0; i < 3; i++)
                backoff_next(&b, &policy, SHORT_RUN);
        assert_int_equal(backoff_next(&b, &policy, 10 * USEC_PER_SEC - 1), 1600 * USEC_PER_MSEC);
}

/* After a stable run the ladder starts over: the exit of the stable worker
 * waits `initial`, and the quick failures after it climb from there again
 * instead of going on from where the earlier failures had left off. */
static void test_short_run_after_stable_starts_over(void **state) {
        Backoff b = {};
        for (unsigned i = 0; i < 20; i++)
                backoff_next(&b, &policy, SHORT_RUN);

        assert_int_equal(backoff_next(&b, &policy, 20 * USEC_PER_SEC), 100 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 200 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 400 * USEC_PER_MSEC);

        /* stable, stable, stable: always the initial delay */
        for (unsigned i = 0; i < 5; i++)
                assert_int_equal(backoff_next(&b, &policy, 10 * USEC_PER_SEC), 100 * USEC_PER_MSEC);
}

static void test_slots_are_independent(void **state) {
        Backoff a = {}, b = {};
        backoff_next(&a, &policy, SHORT_RUN);
        backoff_next(&a, &policy, SHORT_RUN);
        backoff_next(&a, &policy, SHORT_RUN);
        assert_int_equal(backoff_next(&b, &policy, SHORT_RUN), 100 * USEC_PER_MSEC);
        assert_int_equal(backoff_next(&a, &policy, SHORT_RUN), 800 * USEC_PER_MSEC);
}

static void test_other_policies(void **state) {
        /* max below a doubling step: capped exactly */
        const BackoffPolicy p = { .initial_usec = 300, .max_usec = 1000, .stable_usec = 5000 };
        Backoff b = {};
        assert_int_equal(backoff_next(&b, &p, 0), 300);
        assert_int_equal(backoff_next(&b, &p, 0), 600);
        assert_int_equal(backoff_next(&b, &p, 0), 1000);
        assert_int_equal(backoff_next(&b, &p, 0), 1000);

        /* initial == max: no growth at all */
        const BackoffPolicy flat = { .initial_usec = 2 * USEC_PER_SEC, .max_usec = 2 * USEC_PER_SEC,
                                     .stable_usec = 1 };
        Backoff f = {};
        for (unsigned i = 0; i < 10; i++)
                assert_int_equal(backoff_next(&f, &flat, 0), 2 * USEC_PER_SEC);

        /* no delay at all */
        const BackoffPolicy zero = { .initial_usec = 0, .max_usec = 0, .stable_usec = 0 };
        Backoff z = {};
        for (unsigned i = 0; i < 10; i++)
                assert_int_equal(backoff_next(&z, &zero, 0), 0);
}

/* Large durations (restart-delay and restart-delay-max are sums of terms,
 * each below 2^63 µs) must not wrap around when doubled. */
static void test_huge_values_do_not_wrap(void **state) {
        const BackoffPolicy p = {
                .initial_usec = UINT64_C(1) << 63 | 1,
                .max_usec = UINT64_MAX - 1,
                .stable_usec = UINT64_MAX,
        };
        Backoff b = {};
        assert_int_equal(backoff_next(&b, &p, 0), p.initial_usec);
        for (unsigned i = 0; i < 100; i++) {
                uint64_t d = backoff_next(&b, &p, 0);
                if (d < p.initial_usec || d > p.max_usec)
                        fail_msg("delay %llu after %u failures is outside [initial, max]",
                                 (unsigned long long) d, i + 1);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_delay_is_initial),
                cmocka_unit_test(test_doubling),
                cmocka_unit_test(test_capped_at_max),
                cmocka_unit_test(test_stable_run_resets),
                cmocka_unit_test(test_short_run_after_stable_starts_over),
                cmocka_unit_test(test_slots_are_independent),
                cmocka_unit_test(test_other_policies),
                cmocka_unit_test(test_huge_values_do_not_wrap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
