/* Load-distribution math: fairness numbers, the imbalance detector's
 * hysteresis, the Prometheus text, and /proc/PID/stat parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sockherd/exposition.h"
#include "sockherd/metrics.h"
#include "sockherd/procfs.h"
#include "sockherd/util.h"

#define EPS 1e-9

static void test_fairness_even(void **state) {
        Fairness f;
        double v[] = { 5, 5, 5, 5 };
        fairness_compute(v, 4, &f);
        assert_float_equal(f.total, 20, EPS);
        assert_float_equal(f.mean, 5, EPS);
        assert_float_equal(f.jain, 1.0, EPS);
        assert_float_equal(f.max_share, 0.25, EPS);
        assert_float_equal(f.max_ratio, 1.0, EPS);
        assert_float_equal(f.min_ratio, 1.0, EPS);
}

static void test_fairness_one_takes_all(void **state) {
        Fairness f;
        double v[] = { 0, 12, 0, 0 };
        fairness_compute(v, 4, &f);
        assert_float_equal(f.jain, 0.25, EPS);      /* 1/n */
        assert_float_equal(f.max_share, 1.0, EPS);
        assert_float_equal(f.max_ratio, 4.0, EPS);
        assert_float_equal(f.min_ratio, 0.0, EPS);
}

static void test_fairness_mixed(void **state) {
        Fairness f;
        double v[] = { 1, 2, 3 };
        fairness_compute(v, 3, &f);
        /* 36 / (3 * 14) */
        assert_float_equal(f.jain, 36.0 / 42.0, EPS);
        assert_float_equal(f.max_share, 0.5, EPS);
        assert_float_equal(f.max_ratio, 1.5, EPS);
        assert_float_equal(f.min_ratio, 0.5, EPS);
}

static void test_fairness_empty_and_zero(void **state) {
        Fairness f;
        double z[] = { 0, 0 };
        fairness_compute(NULL, 0, &f);
        assert_float_equal(f.jain, 1.0, EPS);
        assert_float_equal(f.max_share, 0.0, EPS);
        fairness_compute(z, 2, &f);
        assert_float_equal(f.jain, 1.0, EPS);
        assert_float_equal(f.mean, 0.0, EPS);
        /* negative values (a counter that went back) count as 0 */
        double neg[] = { -5, 5 };
        fairness_compute(neg, 2, &f);
        assert_float_equal(f.total, 5, EPS);
        assert_float_equal(f.jain, 0.5, EPS);
}

#define SEC USEC_PER_SEC

/* two workers by connections: slot 0 holds them all */
static void feed_conns(ImbalanceDetector *d, unsigned c0, unsigned c1, ImbalanceVerdict *v) {
        ImbalanceInput in[] = { { .slot = 0, .pid = 100, .connections = c0 }, { .slot = 1, .pid = 101, .connections = c1 } };
        assert_int_equal(imbalance_update(d, in, 2, SEC, v), 0);
}

static void test_detector_fires_after_n_intervals(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;
        char text[128];

        imbalance_init(&d, NULL);
        feed_conns(&d, 10, 0, &v);
        assert_true(v.busy);
        assert_false(v.firing);
        feed_conns(&d, 10, 0, &v);
        assert_false(v.firing);
        feed_conns(&d, 10, 0, &v);
        assert_true(v.firing);
        assert_true(v.started);
        assert_int_equal(v.n_starved, 1);
        assert_int_equal(v.starved[0], 1);
        assert_int_equal(v.n_overloaded, 1); /* 2x the mean with two workers */
        assert_int_equal(v.overloaded[0], 0);
        imbalance_describe(&v, text, sizeof(text));
        assert_string_equal(text, "slot 1 starved; slot 0 overloaded");

        feed_conns(&d, 10, 0, &v);
        assert_true(v.firing);
        assert_false(v.started);

        /* hysteresis: stays on until 3 even intervals in a row */
        feed_conns(&d, 5, 5, &v);
        assert_true(v.firing);
        feed_conns(&d, 5, 5, &v);
        assert_true(v.firing);
        feed_conns(&d, 10, 0, &v);      /* an uneven one restarts the quiet count */
        assert_true(v.firing);
        feed_conns(&d, 5, 5, &v);
        feed_conns(&d, 5, 5, &v);
        assert_true(v.firing);
        feed_conns(&d, 5, 5, &v);
        assert_false(v.firing);
        assert_true(v.ended);
        imbalance_describe(&v, text, sizeof(text));
        assert_string_equal(text, "");
        imbalance_done(&d);
}

static void test_detector_needs_persistence(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        for (int i = 0; i < 10; i++) {
                /* uneven every other interval: never 3 in a row */
                feed_conns(&d, i % 2 ? 10 : 5, i % 2 ? 0 : 5, &v);
                assert_false(v.firing);
        }
        imbalance_done(&d);
}

static void test_detector_quiet_when_idle(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        for (int i = 0; i < 5; i++) {
                /* 1 connection in the pool: not busy */
                feed_conns(&d, 1, 0, &v);
                assert_false(v.busy);
                assert_false(v.firing);
        }
        /* CPU below the busy threshold: 0.1 CPU-seconds per second */
        for (int i = 0; i < 5; i++) {
                ImbalanceInput in[] = { { .slot = 0, .pid = 1, .cpu_usec = 100000 }, { .slot = 1, .pid = 2 } };
                assert_int_equal(imbalance_update(&d, in, 2, SEC, &v), 0);
                assert_false(v.busy);
                assert_false(v.firing);
        }
        imbalance_done(&d);
}

static void test_detector_cpu(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        for (int i = 0; i < 3; i++) {
                /* 4 workers, slot 2 burns a whole CPU, the others a little */
                ImbalanceInput in[] = {
                        { .slot = 0, .pid = 10, .cpu_usec = 200000 },
                        { .slot = 1, .pid = 11, .cpu_usec = 200000 },
                        { .slot = 2, .pid = 12, .cpu_usec = 1000000 },
                        { .slot = 3, .pid = 13, .cpu_usec = 200000 },
                };
                assert_int_equal(imbalance_update(&d, in, 4, SEC, &v), 0);
                assert_true(v.busy);
        }
        assert_true(v.firing);
        assert_int_equal(v.n_overloaded, 1);
        assert_int_equal(v.overloaded[0], 2);
        assert_int_equal(v.n_starved, 0);       /* 0.2 is above half of the mean 0.4 */
        imbalance_done(&d);
}

static void test_detector_new_pid_starts_over(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        feed_conns(&d, 10, 0, &v);
        feed_conns(&d, 10, 0, &v);
        /* slot 1 got a new worker: its streak starts over */
        ImbalanceInput in[] = { { .slot = 0, .pid = 100, .connections = 10 }, { .slot = 1, .pid = 555 } };
        assert_int_equal(imbalance_update(&d, in, 2, SEC, &v), 0);
        assert_true(v.firing);                  /* slot 0 reached 3 */
        assert_int_equal(v.n_starved, 0);
        assert_int_equal(v.n_overloaded, 1);
        imbalance_done(&d);
}

static void test_detector_small_counts_are_noise(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        /* 4 workers with 3, 1, 4, 4 connections: slot 1 is below half the
         * mean of 3, but within 2 sigmas (√3) of it */
        for (int i = 0; i < 5; i++) {
                ImbalanceInput in[] = {
                        { .slot = 0, .pid = 1, .connections = 3 }, { .slot = 1, .pid = 2, .connections = 1 },
                        { .slot = 2, .pid = 3, .connections = 4 }, { .slot = 3, .pid = 4, .connections = 4 },
                };
                assert_int_equal(imbalance_update(&d, in, 4, SEC, &v), 0);
                assert_true(v.busy);
                assert_false(v.firing);
        }
        imbalance_done(&d);
}

static void test_detector_single_worker(void **state) {
        ImbalanceDetector d;
        ImbalanceVerdict v;

        imbalance_init(&d, NULL);
        for (int i = 0; i < 5; i++) {
                ImbalanceInput in[] = { { .slot = 0, .pid = 1, .connections = 100, .cpu_usec = SEC } };
                assert_int_equal(imbalance_update(&d, in, 1, SEC, &v), 0);
                assert_false(v.firing);
        }
        imbalance_done(&d);
}

static void test_describe_many(void **state) {
        ImbalanceVerdict v = { .firing = true, .n_starved = 3, .starved = { 1, 4, 7 } };
        char text[128];
        imbalance_describe(&v, text, sizeof(text));
        assert_string_equal(text, "slots 1, 4, 7 starved");
        imbalance_describe(&v, text, 10);
        assert_int_equal(strlen(text), 9);
        v = (ImbalanceVerdict) { .firing = true };
        imbalance_describe(&v, text, sizeof(text));
        assert_string_equal(text, "uneven, settling");
}

static void test_exposition(void **state) {
        Exposition e;
        char esc[64];

        expo_escape_label("a\\b\"c\nd", esc, sizeof(esc));
        assert_string_equal(esc, "a\\\\b\\\"c\\nd");
        expo_escape_label("\"\"\"", esc, 5);         /* never half an escape */
        assert_string_equal(esc, "\\\"\\\"");

        expo_init(&e);
        expo_family(&e, "x_total", "counter", "Help with \\ and\nnewline.");
        expo_sample(&e, "x_total", (const char *[]) { "a", "1", "b", "q\"", NULL }, "%d", 7);
        expo_sample(&e, "x_total", NULL, "%.1f", 2.5);
        assert_int_equal(strbuf_error(&e.text), 0);
        assert_string_equal(e.text.data,
                            "# HELP x_total Help with \\\\ and\\nnewline.\n"
                            "# TYPE x_total counter\n"
                            "x_total{a=\"1\",b=\"q\\\"\"} 7\n"
                            "x_total 2.5\n");
        expo_done(&e);
}

static void test_proc_stat_parse(void **state) {
        pid_t pgrp;
        uint64_t ut, st;
        const char *line = "1234 (we ird) (name)) S 1 1230 1230 0 -1 4194560 100 0 0 0 17 4 0 0 20 0 1 0 "
                           "500 1000000 200 18446744073709551615";
        assert_int_equal(proc_stat_parse(line, &pgrp, &ut, &st), 0);
        assert_int_equal(pgrp, 1230);
        assert_int_equal(ut, 17);
        assert_int_equal(st, 4);
        assert_int_equal(proc_stat_parse("1234 (x S 1", &pgrp, &ut, &st), -EINVAL);
        assert_int_equal(proc_stat_parse("1234 (x) S 1 2", &pgrp, &ut, &st), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fairness_even),
                cmocka_unit_test(test_fairness_one_takes_all),
                cmocka_unit_test(test_fairness_mixed),
                cmocka_unit_test(test_fairness_empty_and_zero),
                cmocka_unit_test(test_detector_fires_after_n_intervals),
                cmocka_unit_test(test_detector_needs_persistence),
                cmocka_unit_test(test_detector_quiet_when_idle),
                cmocka_unit_test(test_detector_cpu),
                cmocka_unit_test(test_detector_new_pid_starts_over),
                cmocka_unit_test(test_detector_small_counts_are_noise),
                cmocka_unit_test(test_detector_single_worker),
                cmocka_unit_test(test_describe_many),
                cmocka_unit_test(test_exposition),
                cmocka_unit_test(test_proc_stat_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
