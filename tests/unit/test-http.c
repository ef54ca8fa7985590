/* The HTTP endpoint's pure parts: the request head parser (limits and
 * RFC 9112 rejections), the response bytes, and the /health verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sockherd/health.h"
#include "sockherd/http-request.h"
#include "sockherd/http-server.h"

static HttpParse parse(const char *text, HttpRequest *req) {
        return http_request_parse(text, strlen(text), req);
}

static void test_good_requests(void **state) {
        HttpRequest req;

        assert_int_equal(parse("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.method, HTTP_METHOD_GET);
        assert_string_equal(req.path, "/health");
        assert_int_equal(req.version_minor, 1);
        assert_int_equal(req.head_size, strlen("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));

        /* HTTP/1.0 needs no Host (HAProxy's plain "option httpchk") */
        assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.version_minor, 0);
        assert_string_equal(req.path, "/metrics");

        /* bare LF line ends, the query left out of the path, OWS trimmed */
        assert_int_equal(parse("HEAD /metrics?x=1 HTTP/1.1\nHost:  a \t\nUser-Agent: curl/7.88\n\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.method, HTTP_METHOD_HEAD);
        assert_string_equal(req.path, "/metrics");

        assert_int_equal(parse("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.method, HTTP_METHOD_OTHER);
        /* methods are case-sensitive: "get" is some other method */
        assert_int_equal(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.method, HTTP_METHOD_OTHER);

        /* Content-Length: 0 is no body; HTTP/1.2 is answered as 1.1 */
        assert_int_equal(parse("GET / HTTP/1.2\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(req.version_minor, 1);

        /* what follows the head (pipelining) is not part of it */
        const char *two = "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
        assert_int_equal(parse(two, &req), HTTP_PARSE_OK);
        assert_string_equal(req.path, "/a");
        assert_int_equal(req.head_size, strlen("GET /a HTTP/1.0\r\n\r\n"));
}

static void test_incomplete(void **state) {
        HttpRequest req = { .method = 42 };
        const char *full = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

        for (size_t n = 0; n < strlen(full); n++)
                assert_int_equal(http_request_parse(full, n, &req), HTTP_PARSE_INCOMPLETE);
        assert_int_equal(req.method, 42); /* untouched until OK */
        assert_int_equal(http_request_parse(full, strlen(full), &req), HTTP_PARSE_OK);
}

static void test_malformed(void **state) {
        HttpRequest req;
        static const char *const bad[] = {
                "\r\n\r\n",
                "GET\r\n\r\n",
                "GET /\r\n\r\n",                                /* HTTP/0.9 */
                "GET  / HTTP/1.0\r\n\r\n",                      /* two spaces */
                "GET / HTTP/1.0 \r\n\r\n",
                "GET health HTTP/1.0\r\n\r\n",                  /* not origin-form */
                "GET http://x/health HTTP/1.0\r\n\r\n",
                "GET /a#b HTTP/1.0\r\n\r\n",
                "GET /\x01 HTTP/1.0\r\n\r\n",
                "GET / HTTP/1.1\r\n\r\n",                       /* 1.1 without Host */
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                "GET / HTTP/1.0\r\nHost : a\r\n\r\n",           /* space before the colon */
                "GET / HTTP/1.0\r\nX: a\r\n folded\r\n\r\n",    /* obs-fold */
                "GET / HTTP/1.0\r\nno colon\r\n\r\n",
                "GET / HTTP/1.0\r\n: empty name\r\n\r\n",
                "GET / HTTP/1.0\r\nX: a\rb\r\n\r\n",            /* bare CR */
                "GET / HTTP/1.0\r\nX: a\x01\r\n\r\n",
                "GET / HTTP/1.0\r\nContent-Length: x\r\n\r\n",
                "GET / HTTP/1.0\r\nContent-Length: \r\n\r\n",
                "GET / HTTP/1.0\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
                "GET / HTTP/1.0\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET / HTTX/1.0\r\n\r\n",
                "GET / HTTP/1.10\r\n\r\n",
                "\x16\x03\x01\x02\x00\x01",                    /* a TLS handshake: at once */
                "GET / HT\rTP",                                 /* a bare CR in the first line: at once */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                HttpParse p = parse(bad[i], &req);
                if (p != HTTP_PARSE_BAD)
                        fail_msg("case %zu (%s): %d, not BAD", i, bad[i], (int) p);
        }
        /* an embedded NUL */
        assert_int_equal(http_request_parse("GET / HTTP/1.0\r\nX: \0\r\n\r\n", 24, &req), HTTP_PARSE_BAD);
        assert_int_equal(http_parse_status(HTTP_PARSE_BAD), 400);
}

static void test_limits(void **state) {
        HttpRequest req;
        /* static, not malloc()ed: under the sanitizers gcc's -Warray-bounds
         * takes a malloc()ed buffer for an empty one here */
        static char buf[HTTP_REQUEST_MAX + 64];

        /* a head of exactly HTTP_REQUEST_MAX bytes is taken, one more is not */
        const char *start = "GET / HTTP/1.0\r\nX: ", *end = "\r\n\r\n";
        size_t fill = HTTP_REQUEST_MAX - strlen(start) - strlen(end);
        strcpy(buf, start);
        memset(buf + strlen(start), 'a', fill);
        strcpy(buf + strlen(start) + fill, end);
        assert_int_equal(strlen(buf), HTTP_REQUEST_MAX);
        assert_int_equal(parse(buf, &req), HTTP_PARSE_OK);
        strcpy(buf, start);
        memset(buf + strlen(start), 'a', fill + 1);
        strcpy(buf + strlen(start) + fill + 1, end);
        assert_int_equal(parse(buf, &req), HTTP_PARSE_TOO_LARGE);
        /* no end of the head within the limit: too large without waiting */
        memset(buf, 'a', HTTP_REQUEST_MAX);
        memcpy(buf, "GET /", 5);
        assert_int_equal(http_request_parse(buf, HTTP_REQUEST_MAX, &req), HTTP_PARSE_TOO_LARGE);
        assert_int_equal(http_request_parse(buf, HTTP_REQUEST_MAX - 1, &req), HTTP_PARSE_INCOMPLETE);
        assert_int_equal(http_parse_status(HTTP_PARSE_TOO_LARGE), 431);

        /* the number of fields */
        size_t n = (size_t) sprintf(buf, "GET / HTTP/1.0\r\n");
        for (int i = 0; i < HTTP_HEADERS_MAX; i++)
                n += (size_t) sprintf(buf + n, "X%d: y\r\n", i);
        strcpy(buf + n, "\r\n");
        assert_int_equal(parse(buf, &req), HTTP_PARSE_OK);
        n += (size_t) sprintf(buf + n, "Y: z\r\n");
        strcpy(buf + n, "\r\n");
        assert_int_equal(parse(buf, &req), HTTP_PARSE_TOO_LARGE);

        /* the target */
        n = (size_t) sprintf(buf, "GET /");
        memset(buf + n, 'p', HTTP_PATH_MAX - 1);
        strcpy(buf + n + HTTP_PATH_MAX - 1, " HTTP/1.0\r\n\r\n");
        assert_int_equal(parse(buf, &req), HTTP_PARSE_OK);
        assert_int_equal(strlen(req.path), HTTP_PATH_MAX);
        n = (size_t) sprintf(buf, "GET /");
        memset(buf + n, 'p', HTTP_PATH_MAX);
        strcpy(buf + n + HTTP_PATH_MAX, " HTTP/1.0\r\n\r\n");
        assert_int_equal(parse(buf, &req), HTTP_PARSE_URI_TOO_LONG);
        assert_int_equal(http_parse_status(HTTP_PARSE_URI_TOO_LONG), 414);

        /* the method */
        assert_int_equal(parse("ABCDEFGHIJKLMNOP / HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_OK);
        assert_int_equal(parse("ABCDEFGHIJKLMNOPQ / HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_BAD);
}

static void test_body_and_version(void **state) {
        HttpRequest req;

        assert_int_equal(parse("GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\n", &req), HTTP_PARSE_BODY);
        assert_int_equal(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &req), HTTP_PARSE_BODY);
        /* the same length twice is not a conflict */
        assert_int_equal(parse("GET / HTTP/1.0\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n", &req), HTTP_PARSE_BODY);
        assert_int_equal(http_parse_status(HTTP_PARSE_BODY), 413);
        assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &req), HTTP_PARSE_VERSION);
        assert_int_equal(http_parse_status(HTTP_PARSE_VERSION), 505);
}

static void test_response_format(void **state) {
        size_t size;
        char *r = http_response_format(503, "application/json", "", "{}\n", 3, false, &size);
        assert_non_null(r);
        assert_string_equal(r, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                               "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}\n");
        assert_int_equal(size, strlen(r));
        free(r);
        /* HEAD: the same head, Content-Length included, and no body */
        r = http_response_format(405, "text/plain", "Allow: GET, HEAD\r\n", "abc", 3, true, &size);
        assert_non_null(r);
        assert_string_equal(r, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n"
                               "Allow: GET, HEAD\r\n\r\n");
        free(r);
}

static void test_health(void **state) {
        char buf[256];
        HealthInput in = { .ready = 2, .wanted = 2, .min_ready = 1, .generation = 3, .reload = "idle" };

        assert_int_equal(health_format(&in, buf, sizeof(buf)), 200);
        assert_string_equal(buf, "{\"status\":\"ready\",\"ready\":2,\"wanted\":2,\"min_ready\":1,\"generation\":3,"
                                 "\"reload\":\"idle\"}\n");
        /* exactly min_ready is enough; one less is not */
        in.min_ready = 2;
        assert_int_equal(health_evaluate(&in), HEALTH_READY);
        in.ready = 1;
        assert_int_equal(health_evaluate(&in), HEALTH_NOT_READY);
        assert_int_equal(health_format(&in, buf, sizeof(buf)), 503);
        assert_non_null(strstr(buf, "\"status\":\"not-ready\""));
        /* min_ready 0: only a stop makes it unhealthy */
        in.min_ready = 0;
        in.ready = 0;
        assert_int_equal(health_evaluate(&in), HEALTH_READY);
        in.draining = true;
        assert_int_equal(health_evaluate(&in), HEALTH_DRAINING);
        assert_int_equal(health_http_status(HEALTH_DRAINING), 503);
        in.stopping = true;
        assert_int_equal(health_evaluate(&in), HEALTH_STOPPING);
        /* a reload does not make the pool unhealthy */
        HealthInput reloading = { .ready = 2, .wanted = 2, .min_ready = 1, .reload = "reloading" };
        assert_int_equal(health_format(&reloading, buf, sizeof(buf)), 200);
        assert_non_null(strstr(buf, "\"reload\":\"reloading\""));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_requests),
                cmocka_unit_test(test_incomplete),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_body_and_version),
                cmocka_unit_test(test_response_format),
                cmocka_unit_test(test_health),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
