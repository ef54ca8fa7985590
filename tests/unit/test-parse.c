/* Unit tests for parse.c: durations, bounded unsigned numbers, quoted
 * command lines, signal names and duration formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sockherd/parse.h"
#include "sockherd/util.h"

#define SENTINEL UINT64_C(0xdeadbeef)

/* ---- parse_duration ---- */

static void check_duration(const char *s, uint64_t expected) {
        uint64_t usec = SENTINEL;
        int r = parse_duration(s, &usec);
        if (r != 0)
                fail_msg("parse_duration(\"%s\") failed with %d, expected %llu", s, r,
                         (unsigned long long) expected);
        if (usec != expected)
                fail_msg("parse_duration(\"%s\") = %llu, expected %llu", s,
                         (unsigned long long) usec, (unsigned long long) expected);
}

static void check_duration_fails(const char *s, int expected_error) {
        uint64_t usec = SENTINEL;
        int r = parse_duration(s, &usec);
        if (r != expected_error)
                fail_msg("parse_duration(\"%s\") returned %d (value %llu), expected %d", s, r,
                         (unsigned long long) usec, expected_error);
        /* a failed parse leaves the output alone */
        assert_int_equal(usec, SENTINEL);
}

static void test_duration_required_forms(void **state) {
        check_duration("500ms", 500 * USEC_PER_MSEC);
        check_duration("2s", 2 * USEC_PER_SEC);
        check_duration("1.5s", 1500 * USEC_PER_MSEC);
        check_duration("1min 30s", 90 * USEC_PER_SEC);
        check_duration("1h", 3600 * USEC_PER_SEC);
        check_duration("250", 250 * USEC_PER_SEC); /* bare numbers are seconds */
        check_duration("10us", 10);
}

static void test_duration_every_unit(void **state) {
        check_duration("3usec", 3);
        check_duration("7msec", 7 * USEC_PER_MSEC);
        check_duration("4sec", 4 * USEC_PER_SEC);
        check_duration("2m", 120 * USEC_PER_SEC);
        check_duration("2min", 120 * USEC_PER_SEC);
        check_duration("1h 30min", 5400 * USEC_PER_SEC);
        check_duration("0", 0);
        check_duration("0s", 0);
        check_duration("1.5", 1500 * USEC_PER_MSEC);
        check_duration("0.5ms", 500);
        check_duration("0.1s", 100 * USEC_PER_MSEC);
        check_duration(".25s", 250 * USEC_PER_MSEC);
        /* rounded to the nearest microsecond, not cut off: 1.001 * 1e6 is
         * 1000999.99... in binary floating point */
        check_duration("1.001s", 1001 * USEC_PER_MSEC);
        check_duration("1.001ms", 1001);
}

static void test_duration_spacing_and_sums(void **state) {
        check_duration("  2s  ", 2 * USEC_PER_SEC);
        check_duration("1 s", USEC_PER_SEC);
        check_duration("1s500ms", 1500 * USEC_PER_MSEC);
        check_duration("1h 1min 1s 1ms 1us", 3661 * USEC_PER_SEC + USEC_PER_MSEC + 1);
        /* "m" is minutes, "ms" milliseconds, "min" minutes: longest suffix wins */
        check_duration("1m 1ms", 60 * USEC_PER_SEC + USEC_PER_MSEC);
}

static void test_duration_rejects(void **state) {
        check_duration_fails("", -EINVAL);
        check_duration_fails("   ", -EINVAL);
        check_duration_fails("abc", -EINVAL);
        check_duration_fails("5 parsecs", -EINVAL);
        check_duration_fails("-1s", -EINVAL);
        check_duration_fails("1x", -EINVAL);
        check_duration_fails("s", -EINVAL);
        check_duration_fails("ms", -EINVAL);
        check_duration_fails("1hour", -EINVAL);
        check_duration_fails("1s x", -EINVAL);
        check_duration_fails("1s -1s", -EINVAL);
        check_duration_fails(".", -EINVAL);
        check_duration_fails("1.5.s", -EINVAL);
        check_duration_fails(NULL, -EINVAL);
}

static void test_duration_overflow(void **state) {
        /* each term fits, the sum does not */
        check_duration("2000000000h 2000000000h", UINT64_C(2000000000) * 2 * 3600 * USEC_PER_SEC);
        check_duration_fails("2000000000h 2000000000h 2000000000h", -ERANGE);
        check_duration_fails("99999999999999999999h", -ERANGE);
}

/* ---- parse_uint_range ---- */

static void check_uint(const char *s, unsigned min, unsigned max, int expected_r, unsigned expected) {
        unsigned v = 4242;
        int r = parse_uint_range(s, min, max, &v);
        if (r != expected_r)
                fail_msg("parse_uint_range(\"%s\", %u, %u) returned %d, expected %d", s, min, max, r,
                         expected_r);
        if (r == 0 && v != expected)
                fail_msg("parse_uint_range(\"%s\", %u, %u) = %u, expected %u", s, min, max, v, expected);
        if (r < 0)
                assert_int_equal(v, 4242); /* untouched on error */
}

static void test_uint_range_bounds(void **state) {
        check_uint("5", 1, 10, 0, 5);
        check_uint("1", 1, 10, 0, 1);
        check_uint("10", 1, 10, 0, 10);
        check_uint("0", 1, 10, -ERANGE, 0);
        check_uint("11", 1, 10, -ERANGE, 0);
        check_uint("0", 0, 0, 0, 0);
        check_uint("010", 1, 10, 0, 10); /* decimal, not octal */
        check_uint("4294967295", 0, UINT_MAX, 0, UINT_MAX);
        check_uint("4294967296", 0, UINT_MAX, -ERANGE, 0);
        check_uint("99999999999999999999999", 0, UINT_MAX, -ERANGE, 0);
        check_uint("65536", 1, 65535, -ERANGE, 0);
}

static void test_uint_range_junk(void **state) {
        check_uint("", 0, 100, -EINVAL, 0);
        check_uint("abc", 0, 100, -EINVAL, 0);
        check_uint("5x", 0, 100, -EINVAL, 0);
        check_uint("5 ", 0, 100, -EINVAL, 0);
        check_uint(" 5", 0, 100, -EINVAL, 0);
        check_uint("-5", 0, 100, -EINVAL, 0);
        check_uint("+5", 0, 100, -EINVAL, 0);
        check_uint("0x10", 0, 100, -EINVAL, 0);
        check_uint("1.5", 0, 100, -EINVAL, 0);
        check_uint(NULL, 0, 100, -EINVAL, 0);
}

/* ---- split_quoted ---- */

static void check_split(const char *s, const char *const *expected) {
        char **argv = (char **) 0x1;
        int r = split_quoted(s, &argv);
        if (r != 0)
                fail_msg("split_quoted(\"%s\") failed with %d", s, r);
        size_t n = 0;
        while (expected[n])
                n++;
        if (strv_length(argv) != n)
                fail_msg("split_quoted(\"%s\") gave %zu words, expected %zu", s, strv_length(argv), n);
        for (size_t i = 0; i < n; i++)
                if (strcmp(argv[i], expected[i]) != 0)
                        fail_msg("split_quoted(\"%s\") word %zu is \"%s\", expected \"%s\"", s, i,
                                 argv[i], expected[i]);
        assert_null(argv[n]);
        strv_free(argv);
}

#define SPLIT(s, ...) check_split(s, (const char *const[]) { __VA_ARGS__, NULL })

static void check_split_fails(const char *s) {
        char **argv = (char **) 0x1;
        int r = split_quoted(s, &argv);
        if (r != -EINVAL)
                fail_msg("split_quoted(\"%s\") returned %d, expected -EINVAL", s, r);
        assert_ptr_equal(argv, (char **) 0x1);
}

static void test_split_plain_words(void **state) {
        SPLIT("a", "a");
        SPLIT("/usr/bin/app --port 80", "/usr/bin/app", "--port", "80");
        SPLIT("  a   b\tc\nd  ", "a", "b", "c", "d");
}

static void test_split_single_quotes(void **state) {
        SPLIT("'a b' c", "a b", "c");
        SPLIT("echo 'it''s'", "echo", "its");
        /* everything inside single quotes is literal, backslashes too */
        SPLIT("'a\\b' '\\'", "a\\b", "\\");
        SPLIT("'say \"hi\"'", "say \"hi\"");
        SPLIT("''", "");
        SPLIT("a '' b", "a", "", "b");
}

static void test_split_double_quotes(void **state) {
        SPLIT("\"a b\" c", "a b", "c");
        SPLIT("\"say \\\"hi\\\"\"", "say \"hi\"");
        SPLIT("\"back\\\\slash\"", "back\\slash");
        /* other backslashes inside double quotes are kept */
        SPLIT("\"a\\nb\"", "a\\nb");
        SPLIT("\"it's\"", "it's");
        SPLIT("\"\"", "");
        SPLIT("sh -c \"echo \\\"$HOME\\\"\"", "sh", "-c", "echo \"$HOME\"");
}

static void test_split_backslash_escapes(void **state) {
        SPLIT("a\\ b c", "a b", "c");
        SPLIT("\\'x", "'x");
        SPLIT("\\\"x", "\"x");
        SPLIT("\\\\", "\\");
        SPLIT("a\\b", "ab");
}

static void test_split_adjacent_parts(void **state) {
        SPLIT("pre'mid'\"post\"\\!", "premidpost!");
        SPLIT("--opt='a b'", "--opt=a b");
}

static void test_split_errors(void **state) {
        check_split_fails("'abc");
        check_split_fails("abc 'def");
        check_split_fails("\"abc");
        check_split_fails("\"abc\\\"");  /* the only closing quote is escaped */
        check_split_fails("abc\\");      /* trailing backslash */
        check_split_fails("");
        check_split_fails("   \t\n");
        check_split_fails(NULL);
}

/* ---- parse_signal ---- */

static void check_signal(const char *s, int expected) {
        int sig = -1;
        int r = parse_signal(s, &sig);
        if (r != 0)
                fail_msg("parse_signal(\"%s\") failed with %d", s, r);
        if (sig != expected)
                fail_msg("parse_signal(\"%s\") = %d, expected %d", s, sig, expected);
}

static void check_signal_fails(const char *s) {
        int sig = -1;
        int r = parse_signal(s, &sig);
        if (r != -EINVAL)
                fail_msg("parse_signal(\"%s\") returned %d (signal %d), expected -EINVAL", s, r, sig);
        assert_int_equal(sig, -1);
}

static void test_signal_names(void **state) {
        check_signal("TERM", SIGTERM);
        check_signal("SIGTERM", SIGTERM);
        check_signal("sigint", SIGINT);
        check_signal("int", SIGINT);
        check_signal("SigQuit", SIGQUIT);
        check_signal("HUP", SIGHUP);
        check_signal("USR1", SIGUSR1);
        check_signal("SIGUSR2", SIGUSR2);
        check_signal("KILL", SIGKILL);
        check_signal("WINCH", SIGWINCH);
}

static void test_signal_numbers(void **state) {
        check_signal("15", 15);
        check_signal("9", 9);
        check_signal("1", 1);
        char max[16];
        snprintf(max, sizeof(max), "%d", SIGRTMAX);
        check_signal(max, SIGRTMAX);
}

static void test_signal_rejects(void **state) {
        check_signal_fails("bogus");
        check_signal_fails("SIGBOGUS");
        check_signal_fails("");
        check_signal_fails("SIG");
        check_signal_fails("0");
        check_signal_fails("-15");
        check_signal_fails("15x");
        check_signal_fails("999");
        check_signal_fails("TERMX");
        check_signal_fails(NULL);
}

/* ---- format_duration ---- */

static void check_format(uint64_t usec, const char *expected) {
        char buf[32];
        const char *s = format_duration(usec, buf);
        assert_ptr_equal(s, buf);
        if (strcmp(s, expected) != 0)
                fail_msg("format_duration(%llu) = \"%s\", expected \"%s\"", (unsigned long long) usec, s,
                         expected);
}

static void test_format_duration(void **state) {
        check_format(0, "0s");
        check_format(2 * USEC_PER_SEC, "2s");
        check_format(90 * USEC_PER_SEC, "90s");
        check_format(1500 * USEC_PER_MSEC, "1.5s");
        check_format(200 * USEC_PER_MSEC, "200ms");
        check_format(100 * USEC_PER_MSEC, "100ms");
        check_format(1 * USEC_PER_MSEC, "1ms");
        check_format(10, "10us");
        check_format(1500, "1500us");
        check_format(USEC_INFINITY, "infinity");
}

static void test_format_duration_round_trip(void **state) {
        const uint64_t values[] = {
                0, 1, 10, 999, USEC_PER_MSEC, 250 * USEC_PER_MSEC, 1500 * USEC_PER_MSEC,
                2250 * USEC_PER_MSEC, 60 * USEC_PER_SEC, 3600 * USEC_PER_SEC, 86400 * USEC_PER_SEC,
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                char buf[32];
                uint64_t back = SENTINEL;
                format_duration(values[i], buf);
                if (parse_duration(buf, &back) < 0 || back != values[i])
                        fail_msg("format_duration(%llu) = \"%s\" does not parse back (got %llu)",
                                 (unsigned long long) values[i], buf, (unsigned long long) back);
        }
}

/* Non-whole second counts of 1000s and more must not come out in
 * exponent notation ("1e+03s" is not a duration for humans). */
static void test_format_duration_no_exponent(void **state) {
        const uint64_t values[] = {
                1000 * USEC_PER_SEC + 500 * USEC_PER_MSEC,  /* 1000.5s */
                12345 * USEC_PER_SEC + 500 * USEC_PER_MSEC, /* 12345.5s */
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                char buf[32];
                format_duration(values[i], buf);
                if (strchr(buf, 'e'))
                        fail_msg("format_duration(%llu) = \"%s\" uses exponent notation",
                                 (unsigned long long) values[i], buf);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration_required_forms),
                cmocka_unit_test(test_duration_every_unit),
                cmocka_unit_test(test_duration_spacing_and_sums),
                cmocka_unit_test(test_duration_rejects),
                cmocka_unit_test(test_duration_overflow),
                cmocka_unit_test(test_uint_range_bounds),
                cmocka_unit_test(test_uint_range_junk),
                cmocka_unit_test(test_split_plain_words),
                cmocka_unit_test(test_split_single_quotes),
                cmocka_unit_test(test_split_double_quotes),
                cmocka_unit_test(test_split_backslash_escapes),
                cmocka_unit_test(test_split_adjacent_parts),
                cmocka_unit_test(test_split_errors),
                cmocka_unit_test(test_signal_names),
                cmocka_unit_test(test_signal_numbers),
                cmocka_unit_test(test_signal_rejects),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_format_duration_round_trip),
                cmocka_unit_test(test_format_duration_no_exponent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
