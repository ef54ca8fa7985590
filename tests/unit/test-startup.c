/* startup.c: start-up's give-up rules over plain slots, every fact that
 * turns them off, and the order of the two verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sockherd/startup.h"
#include "sockherd/util.h"

static StartFacts facts(void) {
        return (StartFacts) { .attempts = 3 };
}

static void fill(Slot *slots, unsigned n, unsigned before_run, unsigned before_ready) {
        for (unsigned i = 0; i < n; i++)
                slots[i] = (Slot) { .exits_before_run = before_run, .exits_before_ready = before_ready };
}

static void test_never_ready(void **state) {
        Slot slots[3];
        StartFacts f = facts();
        f.command_ran = true;

        fill(slots, 3, 0, 3);
        assert_int_equal(start_verdict(&f, slots, 3), START_NEVER_READY);
        /* one slot short of its attempts: go on */
        slots[1].exits_before_ready = 2;
        assert_int_equal(start_verdict(&f, slots, 3), START_GO_ON);
        slots[1].exits_before_ready = 7;
        assert_int_equal(start_verdict(&f, slots, 3), START_NEVER_READY);
}

static void test_cannot_run_comes_first(void **state) {
        Slot slots[2];
        StartFacts f = facts();

        /* 126/127 every time, and never ready either: the command cannot run */
        fill(slots, 2, 3, 3);
        assert_int_equal(start_verdict(&f, slots, 2), START_CANNOT_RUN);
        /* once some worker ran the command, it is the never-ready rule */
        f.command_ran = true;
        assert_int_equal(start_verdict(&f, slots, 2), START_NEVER_READY);
        /* 126/127 in one slot only: not "cannot run" */
        f.command_ran = false;
        slots[0].exits_before_run = 1;
        assert_int_equal(start_verdict(&f, slots, 2), START_NEVER_READY);
}

static void test_what_turns_it_off(void **state) {
        Slot slots[2];
        fill(slots, 2, 5, 5);

        StartFacts cases[7];
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                cases[i] = facts();
        cases[0].attempts = 0;          /* start-attempts = off */
        cases[1].restored = true;       /* after a re-exec */
        cases[2].transaction = true;    /* a reload's failures are its own */
        cases[3].stopping = true;
        cases[4].alive = 1;             /* a worker runs */
        cases[5].worker_was_ready = true, cases[5].command_ran = true;
        cases[6].attempts = 6;          /* not yet 6 exits per slot */
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(start_verdict(&cases[i], slots, 2), START_GO_ON);
        /* no slots at all */
        StartFacts f = facts();
        assert_int_equal(start_verdict(&f, slots, 0), START_GO_ON);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_never_ready),
                cmocka_unit_test(test_cannot_run_comes_first),
                cmocka_unit_test(test_what_turns_it_off),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
