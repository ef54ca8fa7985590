/* The HTTP request head parser (http-request.c), fed the raw bytes as the
 * server reads them, at every length a read could end at: it must never
 * read past size, and its answer must be consistent (a complete head fits
 * in the limit and in the input; the path is a NUL-terminated string that
 * starts with '/'). Then the response formatter with the parsed path as a
 * body. */
#include <stdlib.h>
#include <string.h>

#include "sockherd/http-request.h"
#include "sockherd/http-server.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > HTTP_REQUEST_MAX + 64)
                return 0;
        /* an exact-size heap copy: a read past size is seen by ASan */
        char *s = malloc(size ? size : 1);
        if (!s)
                abort();
        if (size)
                memcpy(s, data, size);

        bool ended = false;
        for (size_t n = size > 256 ? size - 256 : 0; n <= size; n++) {
                HttpRequest req;
                HttpParse p = http_request_parse(s, n, &req);
                if (p == HTTP_PARSE_OK) {
                        if (req.head_size == 0 || req.head_size > n || req.head_size > HTTP_REQUEST_MAX)
                                abort();
                        size_t len = strnlen(req.path, sizeof(req.path));
                        if (len == sizeof(req.path) || req.path[0] != '/')
                                abort();
                        ended = true;
                        size_t out_size;
                        char *out = http_response_format(200, "text/plain", "", req.path, len,
                                                         req.method == HTTP_METHOD_HEAD, &out_size);
                        if (!out || strncmp(out, "HTTP/1.1 200 OK\r\n", 17) != 0)
                                abort();
                        free(out);
                } else if (p == HTTP_PARSE_INCOMPLETE) {
                        /* once complete, a longer input cannot be incomplete again */
                        if (ended || n >= HTTP_REQUEST_MAX)
                                abort();
                } else if (http_parse_status(p) < 400)
                        abort();
        }
        free(s);
        return 0;
}
