/* The string buffer: growth, the limit and what is kept at it, fixed
 * arrays, the sticky error, empty results, formatting through growth. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sockherd/strbuf.h"

static void test_empty(void **state) {
        StrBuf zeroed = {};
        assert_null(zeroed.data);
        assert_string_equal(strbuf_str(&zeroed), "");
        assert_int_equal(strbuf_error(&zeroed), 0);

        char *text = NULL;
        size_t size = 99;
        assert_int_equal(strbuf_steal(&zeroed, &text, &size), 0);
        assert_non_null(text);          /* an empty text is "", not NULL */
        assert_string_equal(text, "");
        assert_int_equal(size, 0);
        free(text);

        /* appending nothing leaves an empty, terminated text */
        _cleanup_strbuf_ StrBuf b;
        strbuf_init(&b, 16);
        assert_int_equal(strbuf_printf(&b, "%s", ""), 0);
        assert_int_equal(strbuf_append(&b, "ignored", 0), 0);
        assert_int_equal(b.size, 0);
        assert_string_equal(strbuf_str(&b), "");
}

static void test_growth(void **state) {
        _cleanup_strbuf_ StrBuf b = {};
        char expect[16];

        for (unsigned i = 0; i < 5000; i++)
                strbuf_printf(&b, "%u,", i % 10);
        assert_int_equal(strbuf_error(&b), 0);
        assert_int_equal(b.size, 10000);
        assert_int_equal(strlen(b.data), 10000);
        assert_true(b.allocated > b.size);
        for (unsigned i = 0; i < 5000; i++) {
                snprintf(expect, sizeof(expect), "%u,", i % 10);
                assert_memory_equal(b.data + 2 * i, expect, 2);
        }

        /* one piece far larger than the room there is */
        char *big = malloc(100001);
        assert_non_null(big);
        memset(big, 'x', 100000);
        big[100000] = '\0';
        assert_int_equal(strbuf_printf(&b, "[%s]", big), 0);
        assert_int_equal(b.size, 10000 + 100002);
        assert_int_equal(b.data[10000], '[');
        assert_int_equal(b.data[b.size - 1], ']');
        assert_int_equal(b.data[b.size], '\0');
        free(big);
}

static void test_printf_at_room_boundary(void **state) {
        _cleanup_strbuf_ StrBuf b = {};
        char filler[300];

        /* fill to just short of the first allocation, then cross it by
         * exactly one byte: the piece cut by the first try must not stay */
        assert_int_equal(strbuf_append(&b, "a", 1), 0);
        size_t room = b.allocated - b.size - 1;
        assert_true(room + 1 < sizeof(filler));
        memset(filler, 'f', room);
        filler[room] = '\0';
        assert_int_equal(strbuf_printf(&b, "%s", filler), 0);
        assert_int_equal(b.size + 1, b.allocated);     /* full, NUL included */
        assert_int_equal(strbuf_printf(&b, "%s-%d", "gh", 42), 0);
        assert_int_equal(b.size, 1 + room + 5);
        assert_string_equal(b.data + 1 + room, "gh-42");
        assert_int_equal(strlen(b.data), b.size);
}

static void test_embedded_formatting(void **state) {
        _cleanup_strbuf_ StrBuf b = {};

        /* an argument's percent signs are text, not format */
        strbuf_printf(&b, "%s|%.*s|%5d|%-3s|%%|%#x", "100%s%n", 3, "abcdef", 42, "a", 255u);
        assert_int_equal(strbuf_error(&b), 0);
        assert_string_equal(b.data, "100%s%n|abc|   42|a  |%|0xff");

        /* raw bytes may hold a NUL: size counts it */
        strbuf_done(&b);
        strbuf_append(&b, "a\0b", 3);
        assert_int_equal(b.size, 3);
        assert_memory_equal(b.data, "a\0b", 4);
}

static void test_limit_keeps_what_fits(void **state) {
        _cleanup_strbuf_ StrBuf b;
        strbuf_init(&b, 10);

        assert_int_equal(strbuf_puts(&b, "hello"), 0);
        assert_int_equal(strbuf_printf(&b, "%d-%s", 12345, "abcdef"), -ENOBUFS);
        assert_string_equal(b.data, "hello12345");
        assert_int_equal(b.size, 10);
        assert_true(b.allocated <= 11);                 /* never more than the limit */

        /* exactly at the limit is not an error */
        StrBuf exact;
        strbuf_init(&exact, 5);
        assert_int_equal(strbuf_puts(&exact, "hello"), 0);
        assert_int_equal(strbuf_puts(&exact, ""), 0);
        assert_int_equal(strbuf_puts(&exact, "!"), -ENOBUFS);
        assert_string_equal(exact.data, "hello");

        /* done empties the text and the error and keeps the limit */
        strbuf_done(&exact);
        assert_int_equal(strbuf_error(&exact), 0);
        assert_int_equal(strbuf_puts(&exact, "123456"), -ENOBUFS);
        assert_string_equal(exact.data, "12345");
        strbuf_done(&exact);

        /* hostile input cannot grow it: a large append is cut, not allocated */
        StrBuf bounded;
        strbuf_init(&bounded, 64);
        char *big = calloc(1, 1 << 20);
        assert_non_null(big);
        assert_int_equal(strbuf_append(&bounded, big, 1 << 20), -ENOBUFS);
        assert_int_equal(bounded.size, 64);
        assert_true(bounded.allocated <= 65);
        free(big);
        strbuf_done(&bounded);
}

static void test_error_sticks(void **state) {
        _cleanup_strbuf_ StrBuf b;
        strbuf_init(&b, 4);

        assert_int_equal(strbuf_puts(&b, "abcdef"), -ENOBUFS);
        /* after the first failure nothing is added, even what would fit */
        strbuf_done(&b);
        strbuf_init(&b, 4);
        assert_int_equal(strbuf_puts(&b, "abc"), 0);
        assert_int_equal(strbuf_puts(&b, "de"), -ENOBUFS);
        assert_string_equal(b.data, "abcd");
        b.size = 2;                     /* as if there were room again */
        b.data[2] = '\0';
        assert_int_equal(strbuf_puts(&b, "x"), -ENOBUFS);
        assert_int_equal(strbuf_printf(&b, "%d", 1), -ENOBUFS);
        size_t room;
        assert_null(strbuf_reserve(&b, 1, &room));
        assert_string_equal(b.data, "ab");

        /* steal reports the error, frees the text and leaves *ret alone */
        char *text = (char *) "untouched";
        size_t size = 7;
        assert_int_equal(strbuf_steal(&b, &text, &size), -ENOBUFS);
        assert_string_equal(text, "untouched");
        assert_int_equal(size, 7);
        assert_null(b.data);
}

/* Under AddressSanitizer, a request no allocator can meet is a failed
 * allocation, as with glibc, not an abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return "allocator_may_return_null=1";
}

static void test_out_of_memory(void **state) {
        _cleanup_strbuf_ StrBuf b = {};

        assert_int_equal(strbuf_puts(&b, "kept"), 0);
        /* no allocator gives this much: memory runs out before any byte is read */
        assert_int_equal(strbuf_append(&b, "x", SIZE_MAX / 8), -ENOMEM);
        assert_string_equal(b.data, "kept");
        assert_int_equal(b.size, 4);
        assert_int_equal(strbuf_puts(&b, "more"), -ENOMEM);
        assert_string_equal(b.data, "kept");
}

static void test_fixed(void **state) {
        char array[8];
        StrBuf b;

        memset(array, 'z', sizeof(array));
        strbuf_init_fixed(&b, array, sizeof(array));
        assert_string_equal(array, "");                 /* terminated before any append */
        assert_int_equal(strbuf_printf(&b, "%s", "abc"), 0);
        assert_int_equal(strbuf_printf(&b, "%d", 12345), -ENOBUFS);
        assert_ptr_equal(b.data, array);                /* never reallocated */
        assert_string_equal(array, "abc1234");
        assert_int_equal(b.size, 7);

        /* done clears the caller's array, it does not free it */
        strbuf_done(&b);
        assert_ptr_equal(b.data, array);
        assert_string_equal(array, "");
        assert_int_equal(strbuf_puts(&b, "ok"), 0);
        assert_string_equal(array, "ok");

        /* the text of a fixed buffer is the caller's: it cannot be stolen */
        char *text = NULL;
        assert_int_equal(strbuf_steal(&b, &text, NULL), -EINVAL);
        assert_null(text);

        char one[1];
        strbuf_init_fixed(&b, one, sizeof(one));
        assert_int_equal(strbuf_puts(&b, "x"), -ENOBUFS);
        assert_string_equal(one, "");
}

static void test_reserve_commit(void **state) {
        _cleanup_strbuf_ StrBuf b;
        size_t room = 0;
        strbuf_init(&b, 10);

        char *p = strbuf_reserve(&b, 4, &room);
        assert_non_null(p);
        assert_true(room >= 4);
        memcpy(p, "abcd", 4);
        strbuf_commit(&b, 4);
        assert_string_equal(b.data, "abcd");

        /* near the limit the room is what is left */
        p = strbuf_reserve(&b, 100, &room);
        assert_non_null(p);
        assert_int_equal(room, 6);
        memcpy(p, "efghij", 6);
        strbuf_commit(&b, 6);
        assert_string_equal(b.data, "abcdefghij");
        assert_null(strbuf_reserve(&b, 1, &room));
        assert_int_equal(strbuf_error(&b), -ENOBUFS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_growth),
                cmocka_unit_test(test_printf_at_room_boundary),
                cmocka_unit_test(test_embedded_formatting),
                cmocka_unit_test(test_limit_keeps_what_fits),
                cmocka_unit_test(test_error_sticks),
                cmocka_unit_test(test_out_of_memory),
                cmocka_unit_test(test_fixed),
                cmocka_unit_test(test_reserve_commit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
