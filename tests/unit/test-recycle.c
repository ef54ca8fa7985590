/* recycle.c: which worker is recycled: the most overdue past max-lifetime,
 * else the first above max-memory; never one that is not ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sockherd/recycle.h"
#include "sockherd/util.h"

static void test_most_overdue_first(void **state) {
        RecycleCandidate c[4] = {
                { .ready = true, .recycle_at_usec = 300 },
                { .ready = true, .recycle_at_usec = 100 },
                { .ready = false, .recycle_at_usec = 50 },      /* not ready: never */
                { .ready = true, .recycle_at_usec = 0 },        /* no max-lifetime */
        };
        RecycleReason why;

        assert_int_equal(recycle_pick(c, 4, 99, &why), -1);
        assert_int_equal(why, RECYCLE_NONE);
        assert_int_equal(recycle_pick(c, 4, 100, &why), 1);
        assert_int_equal(why, RECYCLE_LIFETIME);
        assert_int_equal(recycle_pick(c, 4, 1000, &why), 1);
        c[1].ready = false; /* being replaced */
        assert_int_equal(recycle_pick(c, 4, 1000, &why), 0);
}

static void test_memory(void **state) {
        RecycleCandidate c[3] = {
                { .ready = true, .rss_known = true, .rss_bytes = 100, .max_memory_bytes = 100 },     /* at, not above */
                { .ready = true, .rss_known = false, .rss_bytes = 999, .max_memory_bytes = 100 },    /* not sampled */
                { .ready = true, .rss_known = true, .rss_bytes = 101, .max_memory_bytes = 100 },
        };
        RecycleReason why;

        assert_int_equal(recycle_pick(c, 3, 0, &why), 2);
        assert_int_equal(why, RECYCLE_MEMORY);
        c[2].max_memory_bytes = 0; /* no limit */
        assert_int_equal(recycle_pick(c, 3, 0, &why), -1);
        /* a lifetime candidate wins over memory */
        c[2].max_memory_bytes = 100;
        c[0].recycle_at_usec = 5;
        assert_int_equal(recycle_pick(c, 3, 10, &why), 0);
        assert_int_equal(why, RECYCLE_LIFETIME);
        assert_int_equal(recycle_pick(c, 0, 10, &why), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_most_overdue_first),
                cmocka_unit_test(test_memory),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
