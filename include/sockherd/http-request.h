/* The HTTP/1.x request head as the monitoring endpoint reads it (see
 * http-server.h): a request line and header fields, nothing more. Strict
 * and bounded: the whole head must fit in HTTP_REQUEST_MAX bytes, there
 * are at most HTTP_HEADERS_MAX fields, and anything RFC 9112 says a
 * server must reject (whitespace before a colon, folded lines, control
 * bytes, a bad or conflicting Content-Length, an HTTP/1.1 request without
 * exactly one Host) is rejected. Bodies are not read: a request that
 * announces one is refused. Pure: no I/O, no allocation, no logging. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define HTTP_REQUEST_MAX 8192   /* bytes of request line + header fields + the empty line */
#define HTTP_HEADERS_MAX 64
#define HTTP_PATH_MAX 1024      /* the request target, query included */
#define HTTP_METHOD_MAX 16

typedef enum HttpMethod {
        HTTP_METHOD_GET,
        HTTP_METHOD_HEAD,
        HTTP_METHOD_OTHER,      /* a well-formed method this endpoint does not serve */
} HttpMethod;

typedef enum HttpParse {
        HTTP_PARSE_INCOMPLETE,  /* no end of the head yet, and it may still come */
        HTTP_PARSE_OK,          /* ret is filled in */
        HTTP_PARSE_BAD,         /* 400: malformed */
        HTTP_PARSE_TOO_LARGE,   /* 431: the head is over HTTP_REQUEST_MAX, or too many fields */
        HTTP_PARSE_URI_TOO_LONG, /* 414: the target is over HTTP_PATH_MAX */
        HTTP_PARSE_BODY,        /* 413: a body was announced (Content-Length > 0, Transfer-Encoding) */
        HTTP_PARSE_VERSION,     /* 505: HTTP/2.0 and the like as text */
} HttpParse;

typedef struct HttpRequest {
        HttpMethod method;
        char path[HTTP_PATH_MAX + 1];   /* the target up to '?', NUL-terminated */
        unsigned version_minor;         /* HTTP/1.0 or HTTP/1.1 */
        size_t head_size;               /* bytes the head took, the empty line included */
} HttpRequest;

/* Parse the first size bytes of data (no NUL needed; NULs are malformed).
 * ret is written only on HTTP_PARSE_OK. */
HttpParse http_request_parse(const char *data, size_t size, HttpRequest *ret);

/* The status code an error result answers with (400, 413, 414, 431, 505);
 * 0 for HTTP_PARSE_INCOMPLETE and HTTP_PARSE_OK. */
int http_parse_status(HttpParse p);

/* The reason phrase of a status code this endpoint sends ("Not Found"). */
const char *http_status_reason(int status);
