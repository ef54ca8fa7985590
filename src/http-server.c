/* The monitoring endpoint's HTTP server (see http-server.h). One request
 * per connection: read the head, answer, close. Clients are kept in a list
 * in the order they connected, so the oldest is at its head. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockherd/event-util.h"
#include "sockherd/http-server.h"
#include "sockherd/strbuf.h"

typedef struct HttpClient HttpClient;

struct HttpClient {
        HttpServer *server;
        int fd;
        sd_event_source *io;
        sd_event_source *timer;         /* the read deadline, then the write deadline */
        char in[HTTP_REQUEST_MAX];
        size_t in_size;
        char *out;                      /* the answer, once there is one */
        size_t out_size;
        size_t out_done;
        HttpClient *prev, *next;
};

struct HttpServer {
        sd_event *event;
        int fd;
        sd_event_source *accept_source;
        sd_event_source *retry_source;  /* accepting again after running out of descriptors */
        HttpHandlers handlers;
        void *userdata;
        HttpClient *first, *last;       /* oldest first */
        unsigned n_clients;
        bool full;                      /* in an episode of evictions (logged at start and end) */
        bool out_of_fds;
};

#define HTTP_ACCEPT_RETRY_USEC (500 * USEC_PER_MSEC)

static void server_event(HttpServer *s, const char *fmt, ...) _printf_(2, 3);
static void server_event(HttpServer *s, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        if (!s->handlers.event)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        s->handlers.event(msg, s->userdata);
}

char *http_response_format(int status, const char *content_type, const char *extra_headers, const char *body,
                           size_t body_size, bool head_only, size_t *ret_size) {
        _cleanup_strbuf_ StrBuf b = {};
        char *out;

        strbuf_printf(&b,
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "Cache-Control: no-store\r\n"
                      "Connection: close\r\n"
                      "%s"
                      "\r\n",
                      status, http_status_reason(status), content_type, body_size, extra_headers);
        if (!head_only)
                strbuf_append(&b, body, body_size);
        return strbuf_steal(&b, &out, ret_size) < 0 ? NULL : out;
}

static void client_free(HttpClient *c) {
        HttpServer *s = c->server;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->first = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                s->last = c->prev;
        s->n_clients--;
        if (s->full && s->n_clients < HTTP_CLIENTS_MAX / 2) {
                s->full = false;
                server_event(s, "http: fewer than %d connections again", HTTP_CLIENTS_MAX / 2);
        }
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        free(c->out);
        free(c);
}

/* Read and drop what the client sent beyond its request (bounded), so that
 * closing does not reset the connection before it has read the answer. */
static void client_discard_input(HttpClient *c) {
        char scratch[4096];
        for (unsigned i = 0; i < 4; i++)
                if (recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
                        break;
}

static int on_write_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        HttpClient *c = userdata;
        client_free(c); /* it does not read its answer: its slot is worth more */
        return 0;
}

static void client_flush(HttpClient *c) {
        while (c->out_done < c->out_size) {
                ssize_t n = send(c->fd, c->out + c->out_done, c->out_size - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        if (sd_event_source_set_io_events(c->io, EPOLLOUT) < 0)
                                break;
                        return;
                }
                if (n <= 0)
                        break; /* the client went away */
                c->out_done += (size_t) n;
        }
        if (c->out_done == c->out_size) {
                client_discard_input(c);
                (void) shutdown(c->fd, SHUT_WR);
        }
        client_free(c);
}

/* Answer and close: the body is taken over (may be NULL). */
static void client_respond(HttpClient *c, int status, const char *content_type, const char *extra_headers,
                           char *body, size_t body_size, bool head_only) {
        c->out = http_response_format(status, content_type, extra_headers, body ?: "", body ? body_size : 0,
                                      head_only, &c->out_size);
        free(body);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (!c->out ||
            sd_event_add_time_relative(c->server->event, &c->timer, CLOCK_MONOTONIC, HTTP_WRITE_TIMEOUT_USEC,
                                       10 * USEC_PER_MSEC, on_write_timeout, c) < 0) {
                client_free(c); /* out of memory: no answer rather than an unbounded wait */
                return;
        }
        client_flush(c);
}

static void client_respond_error(HttpClient *c, int status, const char *extra_headers, bool head_only) {
        char *body = NULL;
        int n = asprintf(&body, "%d %s\n", status, http_status_reason(status));
        client_respond(c, status, "text/plain; charset=utf-8", extra_headers, n < 0 ? NULL : body,
                       n < 0 ? 0 : (size_t) n, head_only);
}

static void client_handle(HttpClient *c, const HttpRequest *req) {
        HttpResponse resp = {};
        bool head_only = req->method == HTTP_METHOD_HEAD;

        if (req->method == HTTP_METHOD_OTHER) {
                client_respond_error(c, 405, "Allow: GET, HEAD\r\n", false);
                return;
        }
        c->server->handlers.request(req, &resp, c->server->userdata);
        if (resp.status == 0) {
                free(resp.body);
                client_respond_error(c, 500, "", head_only);
                return;
        }
        client_respond(c, resp.status, resp.content_type ?: "text/plain; charset=utf-8", "", resp.body, resp.body_size,
                       head_only);
}

static int on_client_io(sd_event_source *src _unused_, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        HttpRequest req;

        if (c->out) {
                if (revents & (EPOLLERR | EPOLLHUP))
                        client_free(c);
                else
                        client_flush(c);
                return 0;
        }

        ssize_t n = recv(fd, c->in + c->in_size, sizeof(c->in) - c->in_size, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                client_free(c); /* gone before a whole request */
                return 0;
        }
        bool first = c->in_size == 0;
        /* where the end of the head could begin: "\n\r\n" may straddle reads */
        size_t from = c->in_size >= 2 ? c->in_size - 2 : 0;
        c->in_size += (size_t) n;

        /* Parse only when it can tell something new: on the first read (a
         * TLS handshake or other garbage is refused at once), when the head
         * has ended, or when the buffer is full. Not on every read: a client
         * trickling 8 KiB one byte at a time would cost a parse of the whole
         * buffer per byte. */
        if (!first && c->in_size < sizeof(c->in) &&
            !memmem(c->in + from, c->in_size - from, "\n\n", 2) &&
            !memmem(c->in + from, c->in_size - from, "\n\r\n", 3))
                return 0;
        HttpParse p = http_request_parse(c->in, c->in_size, &req);
        if (p == HTTP_PARSE_INCOMPLETE)
                return 0;
        if (p != HTTP_PARSE_OK) {
                client_respond_error(c, http_parse_status(p), "", false);
                return 0;
        }
        client_handle(c, &req);
        return 0;
}

static int on_read_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        HttpClient *c = userdata;
        client_respond_error(c, 408, "", false);
        return 0;
}

static int on_accept_retry(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        HttpServer *s = userdata;
        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
        return 0;
}

/* Stop accepting for a while; a timer turns it back on. */
static void server_pause(HttpServer *s) {
        int r;

        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
        r = event_reset_time_relative(s->event, &s->retry_source, HTTP_ACCEPT_RETRY_USEC, 10 * USEC_PER_MSEC,
                                      on_accept_retry, s);
        if (r < 0) /* no timer: accept on every wake-up rather than never again */
                (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
}

/* Make room for one more client: close the oldest one that has not sent
 * its whole request yet. False when every client is being answered. */
static bool server_make_room(HttpServer *s) {
        for (HttpClient *c = s->first; c; c = c->next)
                if (!c->out) {
                        if (!s->full) {
                                s->full = true;
                                server_event(s, "http: %d connections open; closing the oldest that have not "
                                             "sent a whole request to make room for new ones", HTTP_CLIENTS_MAX);
                        }
                        client_free(c);
                        return true;
                }
        return false;
}

static int on_accept(sd_event_source *src _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        HttpServer *s = userdata;
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";

        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        if (!s->out_of_fds) {
                                s->out_of_fds = true;
                                server_event(s, "http: cannot accept a connection: %s; pausing", strerror(errno));
                        }
                        server_pause(s); /* would fail again at once: do not spin */
                }
                return 0; /* EAGAIN, ECONNABORTED: try again on the next wake-up */
        }
        if (s->out_of_fds) {
                s->out_of_fds = false;
                server_event(s, "http: accepting connections normally again");
        }
        if (s->n_clients >= HTTP_CLIENTS_MAX && !server_make_room(s)) {
                (void) send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                return 0;
        }

        HttpClient *c = malloc(sizeof(HttpClient));
        if (!c)
                return 0;
        *c = (HttpClient) { .server = s, .fd = TAKE_FD(cfd), .prev = s->last };
        if (s->last)
                s->last->next = c;
        else
                s->first = c;
        s->last = c;
        s->n_clients++;
        if (sd_event_add_io(s->event, &c->io, c->fd, EPOLLIN, on_client_io, c) < 0 ||
            sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC, HTTP_READ_TIMEOUT_USEC,
                                       10 * USEC_PER_MSEC, on_read_timeout, c) < 0)
                client_free(c);
        return 0;
}

int http_server_new(sd_event *e, int fd, const HttpHandlers *h, void *userdata, HttpServer **ret) {
        HttpServer *s = calloc(1, sizeof(HttpServer));
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        *s = (HttpServer) { .event = sd_event_ref(e), .fd = fd, .handlers = *h, .userdata = userdata };
        int flags = fcntl(fd, F_GETFL);
        int r = flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
        if (r >= 0)
                r = sd_event_add_io(e, &s->accept_source, fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                http_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int http_server_fd(const HttpServer *s) {
        return s->fd;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        while (s->first)
                client_free(s->first);
        sd_event_source_disable_unref(s->accept_source);
        sd_event_source_disable_unref(s->retry_source);
        safe_close(s->fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
