/* hello-worker: an example sockherd worker, meant to be copied and adapted.
 *
 * A small single-threaded HTTP/1.1 server built around one poll() loop. It
 * takes its listening sockets from the manager through the systemd socket
 * activation protocol (sd_listen_fds: fds 3, 4, ... plus LISTEN_FDS and
 * LISTEN_PID), tells the manager it is ready with sd_notify("READY=1"), and
 * answers every GET/HEAD request with
 *
 *     hello from pid <pid> slot <SOCKHERD_SLOT> generation <SOCKHERD_GENERATION>
 *
 * "/slow?ms=N" (0 <= N <= 600000) sends the same answer N milliseconds later
 * without holding up any other connection: the delay is a per-connection
 * deadline that the poll() timeout honours.
 *
 * Limits, kept deliberately simple: request headers up to 8 KiB (more gets
 * 431 and the connection is closed); requests with a body (Content-Length
 * above 0 or any Transfer-Encoding) get 400 and the connection is closed.
 * Keep-alive is the default for HTTP/1.1, "Connection: close" is honoured,
 * HTTP/1.0 closes unless the client asks for keep-alive.
 *
 * SIGTERM or SIGINT (received through a signalfd, so no work happens in a
 * signal handler) start a graceful stop: send STOPPING=1 and close the
 * listening sockets (the manager keeps them, so nothing queued is lost), then
 * drain every connection without racing its client:
 *
 *  - a request already received or being received (pending /slow ones
 *    included) is finished and answered with "Connection: close";
 *  - an idle keep-alive connection is not closed at once: its client may be
 *    sending the next request right now, and would see the connection close
 *    without an answer. It gets STOP_IDLE_GRACE_MS (2 s) to send one, which
 *    is answered with "Connection: close"; only a connection that stays idle
 *    that long is closed;
 *  - these closes are polite: shutdown(SHUT_WR) sends our FIN, then input
 *    is read and dropped until the client's FIN (or LINGER_MS, 2 s), so the
 *    kernel never answers unread data with a RST.
 *
 * It exits 0 when no connection is left, at most about 4 s after the stop
 * for idle connections. On exit a line
 * "hello-worker: pid <pid> slot <slot> served <n> requests" goes to stderr.
 *
 * Run it by hand with:
 *     systemd-socket-activate -l 127.0.0.1:8080 ./hello-worker
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define PROG "hello-worker"

#define MAX_HEADER_BYTES   8192    /* request line + headers + blank line */
#define MAX_CONNS          1024    /* stop accepting above this */
#define MAX_SLOW_MS        600000
#define IDLE_TIMEOUT_MS    60000   /* keep-alive connection with no request */
#define HEADER_TIMEOUT_MS  30000   /* from first byte to complete headers */
#define WRITE_TIMEOUT_MS   30000   /* without any write progress */
#define LINGER_MS          2000    /* wait for the peer's FIN after our last byte */
#define STOP_IDLE_GRACE_MS 2000    /* at stop: an idle connection may still send one request */
#define ACCEPT_BATCH       64      /* accepts per listening socket per round */
#define ACCEPT_BACKOFF_MS  100     /* pause accepting after EMFILE and friends */

enum conn_state {
        CONN_READING,   /* waiting for (the rest of) a request */
        CONN_DELAYING,  /* request parsed, answer held back until deadline */
        CONN_WRITING,   /* sending c->out */
        CONN_DRAINING,  /* our side shut down, discarding input until EOF */
        CONN_CLOSED,    /* fd closed, struct freed at the end of the round */
};

struct conn {
        int fd;
        enum conn_state state;
        int64_t deadline;       /* CLOCK_MONOTONIC ms; meaning depends on state */

        /* The request being answered. */
        size_t req_len;         /* bytes of c->in it occupies */
        int status;
        bool head;              /* HEAD: headers only */
        bool keep_alive;
        bool http10;

        size_t in_len;
        size_t out_len, out_off;
        char in[MAX_HEADER_BYTES];
        char out[1024];
};

struct server {
        int sigfd;
        int *listen_fds;
        size_t n_listen;
        struct conn **conns;
        size_t n_conns;
        bool stopping;
        int64_t accept_resume_at;
        uint64_t served;
        pid_t pid;
        const char *slot;
        const char *generation;
};

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *env_or_dash(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : "-";
}

/* ---- connections ------------------------------------------------------ */

static void conn_close(struct conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->state = CONN_CLOSED;
}

/* Drop the first n bytes of the input buffer. */
static void conn_consume(struct conn *c, size_t n) {
        if (n >= c->in_len) {
                c->in_len = 0;
                return;
        }
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
}

/* Close politely: send our FIN, then read and discard whatever the client
 * still sends until it closes too (or LINGER_MS passes). Closing a socket
 * that has unread input makes the kernel send a RST, which can destroy the
 * response before the client has read it. */
static void conn_linger(struct conn *c, int64_t now) {
        if (shutdown(c->fd, SHUT_WR) < 0) {
                conn_close(c);
                return;
        }
        c->in_len = 0;
        c->state = CONN_DRAINING;
        c->deadline = now + LINGER_MS;
}

static void conn_drain(struct conn *c) {
        for (int i = 0; i < 4; i++) {
                ssize_t r = recv(c->fd, c->in, sizeof c->in, 0);
                if (r > 0)
                        continue;
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                conn_close(c);  /* EOF or error: done */
                return;
        }
}

static const char *reason_phrase(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 505: return "HTTP Version Not Supported";
        default:  return "Error";
        }
}

static const char *error_body(int status) {
        switch (status) {
        case 405: return "method not allowed\n";
        case 431: return "request header fields too large\n";
        case 505: return "http version not supported\n";
        default:  return "bad request\n";
        }
}

/* Format the answer to the current request into c->out and switch to
 * CONN_WRITING. Done at send time rather than parse time so that a delayed
 * answer still learns about a stop that began in the meantime. */
static void conn_prepare_response(struct server *s, struct conn *c, int64_t now) {
        char hello[256];
        const char *body, *conn_hdr = "", *extra_hdr = "";
        int n;

        if (s->stopping)
                c->keep_alive = false;

        if (c->status == 200) {
                snprintf(hello, sizeof hello, "hello from pid %d slot %.64s generation %.64s\n",
                         (int) s->pid, s->slot, s->generation);
                body = hello;
        } else
                body = error_body(c->status);

        if (!c->keep_alive)
                conn_hdr = "Connection: close\r\n";
        else if (c->http10)
                conn_hdr = "Connection: keep-alive\r\n";
        if (c->status == 405)
                extra_hdr = "Allow: GET, HEAD\r\n";

        n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s"
                     "\r\n"
                     "%s",
                     c->status, reason_phrase(c->status), strlen(body),
                     extra_hdr, conn_hdr,
                     c->head ? "" : body);
        /* Cannot happen with the sizes above; fail closed if it ever does. */
        if (n < 0 || (size_t) n >= sizeof c->out) {
                conn_close(c);
                return;
        }
        c->out_len = (size_t) n;
        c->out_off = 0;
        c->state = CONN_WRITING;
        c->deadline = now + WRITE_TIMEOUT_MS;
}

/* Answer with an error and close afterwards. */
static void conn_fail(struct server *s, struct conn *c, int status, int64_t now) {
        c->status = status;
        c->head = false;
        c->keep_alive = false;
        c->req_len = c->in_len;
        conn_prepare_response(s, c, now);
}

/* ---- request parsing -------------------------------------------------- */

/* Case-insensitive compare of a counted string with a C string. */
static bool token_eq(const char *p, size_t n, const char *word) {
        return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

static bool is_tchar(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool is_ows(char ch) {
        return ch == ' ' || ch == '\t';
}

/* Parse the ms= parameter of a /slow query string. Returns -1 if absent or
 * not a number in 0..MAX_SLOW_MS. */
static long parse_slow_ms(const char *q, size_t len) {
        while (len > 0) {
                const char *amp = memchr(q, '&', len);
                size_t plen = amp ? (size_t) (amp - q) : len;

                if (plen > 3 && memcmp(q, "ms=", 3) == 0) {
                        long v = 0;
                        if (plen - 3 > 6)
                                return -1;
                        for (size_t i = 3; i < plen; i++) {
                                if (q[i] < '0' || q[i] > '9')
                                        return -1;
                                v = v * 10 + (q[i] - '0');
                        }
                        return v <= MAX_SLOW_MS ? v : -1;
                }
                if (!amp)
                        break;
                len -= plen + 1;
                q = amp + 1;
        }
        return -1;
}

/* Parse one request header block (request line up to and including the
 * blank line). Fills c->status, c->head, c->keep_alive, c->http10 and
 * returns the /slow delay in ms (0 for an immediate answer). When it sets a
 * status that breaks message framing it clears keep_alive. */
static long parse_request(struct conn *c, const char *buf, size_t len) {
        const char *eol = memmem(buf, len, "\r\n", 2);
        const char *line = buf, *sp1, *sp2, *target, *version, *path_end, *p;
        size_t line_len = (size_t) (eol - buf), method_len, target_len, version_len;
        bool conn_close_tok = false, conn_keep_tok = false;
        long slow_ms = 0;

        c->status = 400;
        c->head = false;
        c->keep_alive = false;
        c->http10 = false;

        /* Request line: METHOD SP target SP HTTP/x.y */
        sp1 = memchr(line, ' ', line_len);
        if (!sp1 || sp1 == line)
                return 0;
        for (p = line; p < sp1; p++)
                if (!is_tchar(*p))
                        return 0;
        target = sp1 + 1;
        sp2 = memchr(target, ' ', (size_t) (eol - target));
        if (!sp2 || sp2 == target)
                return 0;
        target_len = (size_t) (sp2 - target);
        version = sp2 + 1;
        version_len = (size_t) (eol - version);
        for (p = target; p < sp2; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return 0;

        if (version_len == 8 && memcmp(version, "HTTP/1.1", 8) == 0)
                c->http10 = false;
        else if (version_len == 8 && memcmp(version, "HTTP/1.0", 8) == 0)
                c->http10 = true;
        else if (version_len >= 5 && memcmp(version, "HTTP/", 5) == 0 && memchr(version, ' ', version_len) == NULL) {
                c->status = 505;
                return 0;
        } else
                return 0;

        /* Header fields. */
        for (p = eol + 2; p < buf + len; ) {
                const char *end = memmem(p, (size_t) (buf + len - p), "\r\n", 2);
                const char *colon, *v, *ve;

                if (end == p)           /* the blank line */
                        break;
                colon = memchr(p, ':', (size_t) (end - p));
                if (!colon || colon == p)
                        return 0;       /* also rejects obs-fold continuation lines */
                for (const char *q = p; q < colon; q++)
                        if (!is_tchar(*q))
                                return 0;
                v = colon + 1;
                ve = end;
                while (v < ve && is_ows(*v))
                        v++;
                while (ve > v && is_ows(ve[-1]))
                        ve--;

                if (token_eq(p, (size_t) (colon - p), "Content-Length")) {
                        if (v == ve)
                                return 0;
                        for (const char *q = v; q < ve; q++) {
                                if (*q < '0' || *q > '9')
                                        return 0;
                                if (*q != '0')
                                        return 0;       /* a body: not supported */
                        }
                } else if (token_eq(p, (size_t) (colon - p), "Transfer-Encoding")) {
                        return 0;
                } else if (token_eq(p, (size_t) (colon - p), "Connection")) {
                        /* Comma-separated list of tokens. */
                        const char *t = v;
                        while (t < ve) {
                                const char *comma = memchr(t, ',', (size_t) (ve - t));
                                const char *te = comma ? comma : ve;
                                const char *ts = t;
                                while (ts < te && is_ows(*ts))
                                        ts++;
                                while (te > ts && is_ows(te[-1]))
                                        te--;
                                if (token_eq(ts, (size_t) (te - ts), "close"))
                                        conn_close_tok = true;
                                else if (token_eq(ts, (size_t) (te - ts), "keep-alive"))
                                        conn_keep_tok = true;
                                t = comma ? comma + 1 : ve;
                        }
                }
                p = end + 2;
        }

        /* The framing is sound from here on, so the connection may live on. */
        c->keep_alive = !conn_close_tok && (!c->http10 || conn_keep_tok);

        /* Methods are case-sensitive. */
        method_len = (size_t) (sp1 - line);
        if (method_len == 4 && memcmp(line, "HEAD", 4) == 0)
                c->head = true;
        else if (!(method_len == 3 && memcmp(line, "GET", 3) == 0)) {
                c->status = 405;
                return 0;
        }

        path_end = memchr(target, '?', target_len);
        if (!path_end)
                path_end = target + target_len;
        if (path_end - target == 5 && memcmp(target, "/slow", 5) == 0) {
                const char *q = path_end < target + target_len ? path_end + 1 : path_end;
                slow_ms = parse_slow_ms(q, (size_t) (target + target_len - q));
                if (slow_ms < 0)
                        return 0;       /* 400, but the connection may stay open */
        }

        c->status = 200;
        return slow_ms;
}

/* ---- connection state machine ----------------------------------------- */

/* CONN_READING: if a complete request is buffered, parse it and move on to
 * CONN_DELAYING or CONN_WRITING. Returns true if the state changed. */
static bool conn_step_read(struct server *s, struct conn *c, int64_t now) {
        const char *end;
        size_t skip = 0;
        long delay;

        /* A server should ignore empty lines before a request line. */
        while (skip + 1 < c->in_len && c->in[skip] == '\r' && c->in[skip + 1] == '\n')
                skip += 2;
        conn_consume(c, skip);

        end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) {
                if (c->in_len >= sizeof c->in) {
                        conn_fail(s, c, 431, now);
                        return true;
                }
                return false;
        }

        c->req_len = (size_t) (end - c->in) + 4;
        delay = parse_request(c, c->in, c->req_len);
        if (delay > 0) {
                c->state = CONN_DELAYING;
                c->deadline = now + delay;
        } else
                conn_prepare_response(s, c, now);
        return true;
}

/* CONN_WRITING: send what the socket takes. Returns true if the response is
 * complete and the connection went back to CONN_READING. */
static bool conn_step_write(struct server *s, struct conn *c, int64_t now) {
        while (c->out_off < c->out_len) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w >= 0) {
                        c->out_off += (size_t) w;
                        c->deadline = now + WRITE_TIMEOUT_MS;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return false;
                conn_close(c);  /* EPIPE, ECONNRESET, ...: client is gone */
                return false;
        }

        s->served++;
        if (!c->keep_alive) {
                conn_linger(c, now);
                return false;
        }
        /* Keep-alive: on to the next request. If a stop began after this
         * answer was prepared, the answer still promised the client another
         * request, so the connection gets the same grace as an idle one
         * (and the next answer says "Connection: close"). */
        conn_consume(c, c->req_len);
        c->req_len = 0;
        c->state = CONN_READING;
        c->deadline = now + (c->in_len > 0 ? HEADER_TIMEOUT_MS :
                             s->stopping ? STOP_IDLE_GRACE_MS : IDLE_TIMEOUT_MS);
        return true;
}

/* Advance a connection as far as it goes without waiting. Pipelined
 * requests already in the buffer are answered one after the other. */
static void conn_run(struct server *s, struct conn *c, int64_t now) {
        for (;;) {
                bool progressed;

                switch (c->state) {
                case CONN_READING:
                        progressed = conn_step_read(s, c, now);
                        break;
                case CONN_WRITING:
                        progressed = conn_step_write(s, c, now);
                        break;
                default:
                        progressed = false;
                        break;
                }
                if (!progressed)
                        return;
        }
}

static void conn_read(struct server *s, struct conn *c, int64_t now) {
        size_t room = sizeof c->in - c->in_len;
        ssize_t r;

        if (room == 0) {
                conn_run(s, c, now);
                return;
        }
        r = recv(c->fd, c->in + c->in_len, room, 0);
        if (r < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                        return;
                conn_close(c);
                return;
        }
        if (r == 0) {
                /* Client closed. Whatever partial request we hold is lost. */
                conn_close(c);
                return;
        }
        if (c->in_len == 0)
                c->deadline = now + HEADER_TIMEOUT_MS;
        c->in_len += (size_t) r;
        conn_run(s, c, now);
}

static void conn_handle_events(struct server *s, struct conn *c, short revents, int64_t now) {
        if (revents == 0)
                return;
        switch (c->state) {
        case CONN_READING:
                conn_read(s, c, now);
                break;
        case CONN_DELAYING:
                /* Only polled for errors: the client reset or went away. */
                if (revents & (POLLERR | POLLHUP))
                        conn_close(c);
                break;
        case CONN_WRITING:
                conn_run(s, c, now);
                break;
        case CONN_DRAINING:
                conn_drain(c);
                break;
        case CONN_CLOSED:
                break;
        }
}

static void conn_handle_deadline(struct server *s, struct conn *c, int64_t now) {
        switch (c->state) {
        case CONN_DELAYING:
                conn_prepare_response(s, c, now);
                conn_run(s, c, now);
                break;
        case CONN_READING:      /* idle or stalled request */
                if (s->stopping && c->in_len == 0) {
                        /* Idle through the stop grace: close, politely. A
                         * request that crosses our FIN is read and dropped
                         * (the client sees the FIN), never answered by a
                         * RST. */
                        conn_linger(c, now);
                        break;
                }
                conn_close(c);
                break;
        case CONN_WRITING:      /* client stopped reading */
        case CONN_DRAINING:     /* client never closed its side */
                conn_close(c);
                break;
        case CONN_CLOSED:
                break;
        }
}

static short conn_poll_events(const struct conn *c) {
        switch (c->state) {
        case CONN_READING:
        case CONN_DRAINING:
                return POLLIN;
        case CONN_WRITING:
                return POLLOUT;
        default:
                return 0;       /* POLLERR and POLLHUP are always reported */
        }
}

/* ---- server ----------------------------------------------------------- */

static void accept_connections(struct server *s, int lfd, int64_t now) {
        for (int i = 0; i < ACCEPT_BATCH && s->n_conns < MAX_CONNS; i++) {
                struct conn *c;
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
                        case EWOULDBLOCK:
#endif
                                return;         /* another worker was faster, or drained */
                        case EINTR:
                        case ECONNABORTED:
                                continue;
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                fprintf(stderr, PROG ": accept: %s; pausing for %d ms\n",
                                        strerror(errno), ACCEPT_BACKOFF_MS);
                                s->accept_resume_at = now + ACCEPT_BACKOFF_MS;
                                return;
                        default:
                                /* Linux reports pending network errors of the
                                 * new connection here; they are not ours. */
                                return;
                        }
                }

                c = calloc(1, sizeof *c);
                if (!c) {
                        close(fd);
                        s->accept_resume_at = now + ACCEPT_BACKOFF_MS;
                        return;
                }
                c->fd = fd;
                c->state = CONN_READING;
                c->deadline = now + IDLE_TIMEOUT_MS;
                s->conns[s->n_conns++] = c;
        }
}

static void begin_stop(struct server *s, int64_t now) {
        int r;

        if (s->stopping)
                return;         /* a repeated signal changes nothing */
        s->stopping = true;

        r = sd_notify(0, "STOPPING=1");
        if (r < 0)
                fprintf(stderr, PROG ": sd_notify(STOPPING=1): %s\n", strerror(-r));

        /* The manager keeps its own copy of each listening socket, so
         * connections still in the backlog go to the other workers. */
        for (size_t i = 0; i < s->n_listen; i++)
                close(s->listen_fds[i]);
        s->n_listen = 0;

        /* Idle connections, keep-alive ones and those accepted a moment ago
         * alike, are not closed now: the client may be sending a request
         * this very moment and would see the close instead of an answer
         * (closing idle connections at once is what makes clients under
         * load see errors during a rolling reload). Give each the grace
         * period to send one more request; that request is answered with
         * "Connection: close" and the connection closed after it. Requests
         * being received or answered keep their own deadlines. */
        for (size_t i = 0; i < s->n_conns; i++) {
                struct conn *c = s->conns[i];
                if (c->state == CONN_READING && c->in_len == 0 && c->deadline > now + STOP_IDLE_GRACE_MS)
                        c->deadline = now + STOP_IDLE_GRACE_MS;
        }
}

static void handle_signals(struct server *s, int64_t now) {
        struct signalfd_siginfo si;

        for (;;) {
                ssize_t r = read(s->sigfd, &si, sizeof si);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r != (ssize_t) sizeof si)
                        return;         /* EAGAIN: none left */
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        begin_stop(s, now);
        }
}

/* Free connections closed during this round. Order does not matter. */
static void reap_connections(struct server *s) {
        for (size_t i = 0; i < s->n_conns; ) {
                if (s->conns[i]->state == CONN_CLOSED) {
                        free(s->conns[i]);
                        s->conns[i] = s->conns[--s->n_conns];
                } else
                        i++;
        }
}

static int poll_timeout(const struct server *s, int64_t now) {
        int64_t next = INT64_MAX;

        if (!s->stopping && s->accept_resume_at > now)
                next = s->accept_resume_at;
        for (size_t i = 0; i < s->n_conns; i++)
                if (s->conns[i]->deadline < next)
                        next = s->conns[i]->deadline;
        if (next == INT64_MAX)
                return -1;
        if (next <= now)
                return 0;
        return next - now > INT32_MAX ? INT32_MAX : (int) (next - now);
}

static int setup_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_IGN };
        sigset_t mask;
        int fd;

        /* Writing to a reset connection must fail with EPIPE, not kill us.
         * (send() also passes MSG_NOSIGNAL; this covers everything else.) */
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGPIPE, &sa, NULL) < 0)
                return -1;

        /* A signal ignored by whoever started us would never reach the
         * signalfd, so restore the default before blocking. */
        sa.sa_handler = SIG_DFL;
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -1;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -1;

        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd;
}

int main(void) {
        struct server s = {
                .sigfd = -1,
                .pid = getpid(),
                .slot = env_or_dash("SOCKHERD_SLOT"),
                .generation = env_or_dash("SOCKHERD_GENERATION"),
        };
        struct pollfd *pfds;
        int n, r;

        s.sigfd = setup_signals();
        if (s.sigfd < 0) {
                fprintf(stderr, PROG ": cannot set up signal handling: %s\n", strerror(errno));
                return 1;
        }

        /* Checks LISTEN_PID against our pid and marks the fds close-on-exec. */
        n = sd_listen_fds(0);
        if (n <= 0) {
                fprintf(stderr, PROG ": no listening socket passed (LISTEN_FDS); "
                        "run me under sockherd or systemd-socket-activate\n");
                return 1;
        }

        s.listen_fds = calloc((size_t) n, sizeof *s.listen_fds);
        s.conns = calloc(MAX_CONNS, sizeof *s.conns);
        pfds = calloc(1 + (size_t) n + MAX_CONNS, sizeof *pfds);
        if (!s.listen_fds || !s.conns || !pfds) {
                fprintf(stderr, PROG ": out of memory\n");
                return 1;
        }

        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                int flags;

                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        fprintf(stderr, PROG ": fd %d is not a listening stream socket, ignoring it\n", fd);
                        continue;
                }
                /* Non-blocking accept is required: every worker polls the same
                 * sockets, and only one of them gets each connection. Note that
                 * this flag lives on the shared open file description. */
                flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                        fprintf(stderr, PROG ": fcntl(%d, O_NONBLOCK): %s\n", fd, strerror(errno));
                        return 1;
                }
                s.listen_fds[s.n_listen++] = fd;
        }
        if (s.n_listen == 0) {
                fprintf(stderr, PROG ": none of the %d passed fds is a listening stream socket\n", n);
                return 1;
        }

        r = sd_notifyf(0, "READY=1\nSTATUS=serving on %zu socket(s)", s.n_listen);
        if (r < 0)
                fprintf(stderr, PROG ": sd_notify(READY=1): %s\n", strerror(-r));
        fprintf(stderr, PROG ": pid %d slot %s generation %s ready on %zu socket(s)\n",
                (int) s.pid, s.slot, s.generation, s.n_listen);

        while (!(s.stopping && s.n_conns == 0)) {
                int64_t now = now_ms();
                size_t nfds = 0, listen_base, conn_base, polled_conns;
                bool accepting;

                pfds[nfds++] = (struct pollfd) { .fd = s.sigfd, .events = POLLIN };

                accepting = !s.stopping && s.n_conns < MAX_CONNS && now >= s.accept_resume_at;
                listen_base = nfds;
                if (accepting)
                        for (size_t i = 0; i < s.n_listen; i++)
                                pfds[nfds++] = (struct pollfd) { .fd = s.listen_fds[i], .events = POLLIN };

                conn_base = nfds;
                polled_conns = s.n_conns;
                for (size_t i = 0; i < polled_conns; i++)
                        pfds[nfds++] = (struct pollfd) {
                                .fd = s.conns[i]->fd,
                                .events = conn_poll_events(s.conns[i]),
                        };

                r = poll(pfds, nfds, poll_timeout(&s, now));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
                        return 1;
                }
                now = now_ms();

                /* Requests that arrived are taken in before a stop begins;
                 * new connections are accepted only if no stop began. */
                for (size_t i = 0; i < polled_conns; i++)
                        conn_handle_events(&s, s.conns[i], pfds[conn_base + i].revents, now);

                if (pfds[0].revents)
                        handle_signals(&s, now);

                if (accepting && !s.stopping)
                        for (size_t i = 0; i < s.n_listen; i++)
                                if (pfds[listen_base + i].revents)
                                        accept_connections(&s, s.listen_fds[i], now);

                for (size_t i = 0; i < s.n_conns; i++)
                        if (s.conns[i]->state != CONN_CLOSED && s.conns[i]->deadline <= now)
                                conn_handle_deadline(&s, s.conns[i], now);

                reap_connections(&s);
        }

        fprintf(stderr, PROG ": pid %d slot %s served %" PRIu64 " requests\n",
                (int) s.pid, s.slot, s.served);
        free(pfds);
        free(s.conns);
        free(s.listen_fds);
        close(s.sigfd);
        return 0;
}
