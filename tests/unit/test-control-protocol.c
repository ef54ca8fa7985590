/* The control protocol: request parsing, reply building, escaping and
 * parsing back, as both ends use them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sockherd/control-protocol.h"

static void test_request_parse(void **state) {
        char *argv[CONTROL_ARGS_MAX + 1];
        char ok[] = "sockherd-control/1 reload --wait";
        assert_int_equal(control_request_parse(ok, argv), 2);
        assert_string_equal(argv[0], "reload");
        assert_string_equal(argv[1], "--wait");
        assert_null(argv[2]);

        char other_version[] = "sockherd-control/2 status";
        assert_int_equal(control_request_parse(other_version, argv), -EPROTO);
        char junk[] = "GET / HTTP/1.1";
        assert_int_equal(control_request_parse(junk, argv), -EBADMSG);
        char empty[] = "";
        assert_int_equal(control_request_parse(empty, argv), -EBADMSG);
        char no_command[] = "sockherd-control/1";
        assert_int_equal(control_request_parse(no_command, argv), -EBADMSG);
        char control_bytes[] = "sockherd-control/1 status\x01";
        assert_int_equal(control_request_parse(control_bytes, argv), -EBADMSG);
        char many[] = "sockherd-control/1 a b c d e f g h i";
        assert_int_equal(control_request_parse(many, argv), -EBADMSG);
}

static void test_escape_round_trip(void **state) {
        const char *in = "a\\b\nc\td\x01" "e";
        char out[64];
        control_escape(in, out, sizeof(out));
        assert_string_equal(out, "a\\\\b\\nc\\td\\x01e");
        assert_null(strchr(out, '\n'));
        control_unescape(out);
        assert_string_equal(out, in);

        /* appended to a buffer, the same escape, never truncated */
        StrBuf b = {};
        assert_int_equal(control_escape_append(&b, in), 0);
        assert_string_equal(b.data, "a\\\\b\\nc\\td\\x01e");
        strbuf_done(&b);

        /* truncation never splits an escape */
        char small[6];
        control_escape("\n\n\n", small, sizeof(small));
        assert_string_equal(small, "\\n\\n");
}

typedef struct Seen {
        char keys[8][32];
        char values[8][64];
        int n;
} Seen;

static void collect(const char *key, const char *value, void *userdata) {
        Seen *s = userdata;
        strcpy(s->keys[s->n], key);
        strcpy(s->values[s->n], value);
        s->n++;
}

static void test_reply_round_trip(void **state) {
        ControlReply r;
        control_reply_init(&r, NULL);
        control_reply_add(&r, "name", "%s", "app");
        control_reply_add(&r, "worker.0.status", "%s", "two\nlines");
        control_reply_add(&r, "workers.ready", "%u", 4u);

        Seen seen = {};
        const char *error = "unset";
        char *copy = strdup(r.text.data);
        assert_int_equal(control_reply_parse(copy, &error, collect, &seen), 0);
        assert_null(error);
        assert_int_equal(seen.n, 3);
        assert_string_equal(seen.keys[1], "worker.0.status");
        assert_string_equal(seen.values[1], "two\nlines");
        assert_string_equal(seen.values[2], "4");
        free(copy);
        control_reply_done(&r);

        control_reply_init(&r, "reload failed: app.conf:3: bad\nthing");
        copy = strdup(r.text.data);
        assert_int_equal(control_reply_parse(copy, &error, NULL, NULL), 0);
        assert_string_equal(error, "reload failed: app.conf:3: bad\nthing");
        free(copy);
        control_reply_done(&r);
}

static void test_reply_parse_rejects_garbage(void **state) {
        const char *error;
        char a[] = "HTTP/1.1 200 OK\n";
        assert_int_equal(control_reply_parse(a, &error, NULL, NULL), -EBADMSG);
        char b[] = "sockherd-control/1 maybe\n";
        assert_int_equal(control_reply_parse(b, &error, NULL, NULL), -EBADMSG);
        char c[] = "sockherd-control/1 ok\nkeywithoutvalue\n";
        assert_int_equal(control_reply_parse(c, &error, NULL, NULL), -EBADMSG);
        char d[] = "";
        assert_int_equal(control_reply_parse(d, &error, NULL, NULL), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_parse),
                cmocka_unit_test(test_escape_round_trip),
                cmocka_unit_test(test_reply_round_trip),
                cmocka_unit_test(test_reply_parse_rejects_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
