/* The monitoring endpoint's HTTP server (http-listen): accepts on one
 * listening socket, reads one request head per connection (parsed by
 * http-request.c), hands a well-formed GET or HEAD to the manager's
 * handler and writes the answer with Connection: close. Small, strict and
 * bounded, so that nothing a client does can stall the event loop:
 *  - at most HTTP_CLIENTS_MAX connections; when full, the oldest one still
 *    sending its request is closed to make room (a flood of idle
 *    connections cannot lock out a real health check), and if every slot
 *    is writing an answer the newcomer gets a 503;
 *  - the request head must arrive within HTTP_READ_TIMEOUT_USEC of the
 *    connection and fit in HTTP_REQUEST_MAX bytes;
 *  - the answer must be read within HTTP_WRITE_TIMEOUT_USEC;
 *  - every read and write is non-blocking; out of file descriptors,
 *    accepting pauses instead of spinning.
 * Errors: 400 malformed, 405 (with Allow) for other methods, 413 a body,
 * 414 a long target, 431 a large head, 505 another HTTP version, 408 and a
 * close when the head does not come in time. The handler decides the
 * rest (404 for unknown paths). */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "sockherd/http-request.h"
#include "sockherd/util.h"

#define HTTP_CLIENTS_MAX 32
#define HTTP_READ_TIMEOUT_USEC (3 * USEC_PER_SEC)
#define HTTP_WRITE_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define HTTP_LISTEN_BACKLOG 64

typedef struct HttpServer HttpServer;

typedef struct HttpResponse {
        int status;
        const char *content_type;       /* a constant string */
        char *body;                     /* malloc()ed, taken over by the server; NULL: empty */
        size_t body_size;
} HttpResponse;

typedef struct HttpHandlers {
        /* A well-formed GET or HEAD (for HEAD, answer as for GET: the body
         * is left out on the wire). Fill in resp; status 0 means 500. */
        void (*request)(const HttpRequest *req, HttpResponse *resp, void *userdata);
        /* Something worth a log line (a full server, out of descriptors). */
        void (*event)(const char *message, void *userdata);
} HttpHandlers;

/* Takes ownership of the listening fd (made non-blocking here). */
int http_server_new(sd_event *e, int fd, const HttpHandlers *h, void *userdata, HttpServer **ret);
HttpServer *http_server_free(HttpServer *s);
/* The listening fd (still owned by the server). */
int http_server_fd(const HttpServer *s);

/* The whole answer as bytes: status line, headers, and the body unless
 * head_only. extra_headers is "" or lines each ending in CRLF. Pure;
 * NULL when out of memory. */
char *http_response_format(int status, const char *content_type, const char *extra_headers, const char *body,
                           size_t body_size, bool head_only, size_t *ret_size);
