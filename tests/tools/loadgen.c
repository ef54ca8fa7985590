/* loadgen: a small HTTP load client for sockherd's tests.
 *
 *     loadgen --target 127.0.0.1:PORT [--concurrency N] [--duration SECONDS |
 *             --until-signal] [--path /] [--rate-limit R]
 *
 * N threads (default 8) each loop: connect, send
 *     GET PATH HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n
 * read the response until EOF, close. Every attempt is counted once:
 *
 *   ok       the response's status line says 2xx
 *   failed   the server closed the connection cleanly but the answer was
 *            not a 2xx HTTP response (another status, garbage, or nothing)
 *   refused  connect() failed with ECONNREFUSED
 *   errors   anything else: connect() failing otherwise, ECONNRESET or
 *            EPIPE while sending or reading, or the 5 s per-request deadline
 *
 * so sent = ok + failed + refused + errors. Load stops after --duration
 * seconds (default 10), or at SIGTERM/SIGINT (with --until-signal, only
 * then); requests in flight at that moment are finished (each is bounded by
 * its 5 s deadline) and counted. --rate-limit R caps the total rate at R
 * requests per second, spread over the threads. The target must be a
 * loopback address. Output, on stdout:
 *
 *     sent=N ok=N failed=N refused=N errors=N
 *     pids=P1:count,P2:count,...
 *
 * the second line counting the 2xx answers whose body starts with
 * "hello from pid P" (hello-worker's answer) per pid, empty if none did.
 * The first 10 failed or erroneous requests are described on stderr (what
 * went wrong, after how long, the start of what was received). Exit status
 * 0, or 1 for bad usage.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "loadgen"
#define REQUEST_TIMEOUT_MS 5000
#define MAX_CONCURRENCY 1024
#define MAX_DURATION 3600
#define RESPONSE_KEEP 512       /* bytes of each response kept for parsing */

enum outcome { OUT_OK, OUT_FAILED, OUT_REFUSED, OUT_ERROR };

struct pid_count {
        long pid;
        uint64_t count;
};

struct pid_table {
        struct pid_count *v;
        size_t n, cap;
};

struct worker {
        pthread_t thread;
        unsigned index;
        uint64_t sent, ok, failed, refused, errors;
        struct pid_table pids;
        bool oom;
};

static struct sockaddr_storage target;
static socklen_t target_len;
static char request[4096];
static size_t request_len;
static unsigned concurrency = 8;
static double rate_limit;       /* requests per second, all threads; 0: none */
static atomic_bool stop_flag;
static atomic_int reports_left = 10;    /* failures described on stderr */

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Describe one failed or erroneous request on stderr, the first few only. */
static void report(const char *what, int err, const char *buf, size_t len, int64_t started) {
        char shown[64];
        size_t n = 0;

        if (atomic_fetch_sub(&reports_left, 1) <= 0)
                return;
        for (size_t i = 0; i < len && n < sizeof shown - 1; i++)
                shown[n++] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '.';
        shown[n] = '\0';
        fprintf(stderr, PROG ": %s%s%s after %" PRId64 " ms, %zu response bytes%s%s%s\n",
                what, err ? ": " : "", err ? strerror(err) : "", now_ms() - started, len,
                len ? " \"" : "", shown, len ? "\"" : "");
}

/* Wait for events on fd until the request's deadline. 1: ready, 0: timed
 * out, -errno on failure. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline - now_ms();
                struct pollfd p = { .fd = fd, .events = events };
                int r;

                if (left <= 0)
                        return 0;
                r = poll(&p, 1, (int) left);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 1;
        }
}

static void pid_table_add(struct worker *w, long pid) {
        struct pid_table *t = &w->pids;

        for (size_t i = 0; i < t->n; i++)
                if (t->v[i].pid == pid) {
                        t->v[i].count++;
                        return;
                }
        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 16;
                struct pid_count *v = realloc(t->v, cap * sizeof *v);

                if (!v) {
                        w->oom = true;
                        return;
                }
                t->v = v;
                t->cap = cap;
        }
        t->v[t->n++] = (struct pid_count) { .pid = pid, .count = 1 };
}

/* Classify a complete response (read until EOF). */
static enum outcome judge_response(struct worker *w, const char *buf, size_t len) {
        const char *body;
        int status;

        if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
                return OUT_FAILED;
        if (buf[9] < '0' || buf[9] > '9' || buf[10] < '0' || buf[10] > '9' ||
            buf[11] < '0' || buf[11] > '9')
                return OUT_FAILED;
        status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
        if (status < 200 || status > 299)
                return OUT_FAILED;

        body = memmem(buf, len, "\r\n\r\n", 4);
        if (body) {
                static const char hello[] = "hello from pid ";
                size_t off = (size_t) (body + 4 - buf);

                if (len - off > sizeof hello - 1 &&
                    memcmp(buf + off, hello, sizeof hello - 1) == 0) {
                        long pid = 0;
                        bool digits = false;

                        for (size_t i = off + sizeof hello - 1; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
                                digits = true;
                                if (pid < LONG_MAX / 10)
                                        pid = pid * 10 + (buf[i] - '0');
                        }
                        if (digits)
                                pid_table_add(w, pid);
                }
        }
        return OUT_OK;
}

static enum outcome one_request(struct worker *w) {
        int64_t started = now_ms();
        int64_t deadline = started + REQUEST_TIMEOUT_MS;
        const char *stage = "socket";
        int err = 0;
        char buf[RESPONSE_KEEP];
        size_t len = 0, off = 0;
        enum outcome result = OUT_ERROR;
        int fd, r;

        fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                report("socket", errno, NULL, 0, started);
                return OUT_ERROR;
        }

        stage = "connect";
        if (connect(fd, (struct sockaddr *) &target, target_len) < 0) {
                err = errno;
                if (err == ECONNREFUSED) {
                        result = OUT_REFUSED;
                        goto out;
                }
                if (err != EINPROGRESS)
                        goto out;
                err = 0;
                r = wait_fd(fd, POLLOUT, deadline);
                if (r <= 0) {
                        err = r < 0 ? -r : ETIMEDOUT;
                        goto out;
                }
                socklen_t sl = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0) {
                        err = errno;
                        goto out;
                }
                if (err == ECONNREFUSED) {
                        result = OUT_REFUSED;
                        goto out;
                }
                if (err != 0)
                        goto out;
        }

        stage = "send";
        while (off < request_len) {
                ssize_t n = send(fd, request + off, request_len - off, MSG_NOSIGNAL);

                if (n > 0) {
                        off += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r <= 0) {
                                err = r < 0 ? -r : ETIMEDOUT;
                                goto out;
                        }
                        continue;
                }
                err = n < 0 ? errno : EPIPE;
                goto out;       /* EPIPE, ECONNRESET, ... */
        }

        stage = "recv";
        for (;;) {
                char chunk[4096];
                ssize_t n = recv(fd, chunk, sizeof chunk, 0);

                if (n > 0) {
                        size_t keep = (size_t) n;

                        if (keep > sizeof buf - len)
                                keep = sizeof buf - len;
                        memcpy(buf + len, chunk, keep);
                        len += keep;
                        continue;
                }
                if (n == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        r = wait_fd(fd, POLLIN, deadline);
                        if (r <= 0) {
                                err = r < 0 ? -r : ETIMEDOUT;
                                goto out;
                        }
                        continue;
                }
                err = errno;
                goto out;       /* ECONNRESET, ... */
        }
        result = judge_response(w, buf, len);
        if (result == OUT_FAILED)
                report("failed: not a 2xx response", 0, buf, len, started);
out:
        if (result == OUT_ERROR) {
                char what[32];

                snprintf(what, sizeof what, "error in %s", stage);
                report(what, err, buf, len, started);
        }
        close(fd);
        return result;
}

static void *worker_main(void *arg) {
        struct worker *w = arg;
        /* Pace each thread at rate/concurrency; start them staggered. */
        int64_t interval = rate_limit > 0 ? (int64_t) (1e9 * concurrency / rate_limit) : 0;
        int64_t next = now_ns() + (interval ? interval * w->index / concurrency : 0);

        while (!atomic_load(&stop_flag)) {
                if (interval) {
                        int64_t wait = next - now_ns();

                        if (wait > 0) {
                                struct timespec ts;

                                if (wait > 100000000)
                                        wait = 100000000;       /* re-check stop */
                                ts.tv_sec = wait / 1000000000;
                                ts.tv_nsec = wait % 1000000000;
                                nanosleep(&ts, NULL);
                                continue;
                        }
                        next += interval;
                        /* After a stall, do not burst to catch up. */
                        if (next < now_ns())
                                next = now_ns();
                }

                w->sent++;
                switch (one_request(w)) {
                case OUT_OK:
                        w->ok++;
                        break;
                case OUT_FAILED:
                        w->failed++;
                        break;
                case OUT_REFUSED:
                        w->refused++;
                        break;
                case OUT_ERROR:
                        w->errors++;
                        break;
                }
        }
        return NULL;
}

static int parse_target(const char *s) {
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon, *port_s;
        char *end;
        unsigned long port;
        size_t hlen;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close || close[1] != ':')
                        return -1;
                hlen = (size_t) (close - s - 1);
                if (hlen >= sizeof host)
                        return -1;
                memcpy(host, s + 1, hlen);
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -1;
                hlen = (size_t) (colon - s);
                if (hlen >= sizeof host)
                        return -1;
                memcpy(host, s, hlen);
                port_s = colon + 1;
        }
        host[hlen] = '\0';

        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno || end == port_s || *end || port == 0 || port > 65535)
                return -1;

        memset(&target, 0, sizeof target);
        struct sockaddr_in *in4 = (struct sockaddr_in *) &target;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &target;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
                        return -2;
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t) port);
                target_len = sizeof *in4;
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
                        return -2;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                target_len = sizeof *in6;
        } else
                return -1;
        return 0;
}

static int cmp_pid(const void *a, const void *b) {
        const struct pid_count *x = a, *y = b;

        return (x->pid > y->pid) - (x->pid < y->pid);
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: " PROG " --target 127.0.0.1:PORT [--concurrency N] [--duration SECONDS | --until-signal]\n"
                "               [--path /] [--rate-limit R]\n"
                "Loopback targets only. Prints: sent=N ok=N failed=N refused=N errors=N\n"
                "                               pids=P1:count,...\n");
}

static int bad_usage(const char *msg, const char *arg) {
        if (arg)
                fprintf(stderr, PROG ": %s: %s\n", msg, arg);
        else
                fprintf(stderr, PROG ": %s\n", msg);
        usage(stderr);
        return 1;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "target",       required_argument, NULL, 't' },
                { "concurrency",  required_argument, NULL, 'c' },
                { "duration",     required_argument, NULL, 'd' },
                { "until-signal", no_argument,       NULL, 'u' },
                { "path",         required_argument, NULL, 'p' },
                { "rate-limit",   required_argument, NULL, 'r' },
                { "help",         no_argument,       NULL, 'h' },
                {}
        };
        const char *target_s = NULL, *path = "/";
        double duration = 10;
        bool duration_set = false, until_signal = false;
        struct worker *workers;
        sigset_t sigs;
        char *end;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "t:c:d:up:r:h", options, NULL)) >= 0) {
                switch (opt) {
                case 't':
                        target_s = optarg;
                        break;
                case 'c': {
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v == 0 || v > MAX_CONCURRENCY)
                                return bad_usage("bad --concurrency (1..1024)", optarg);
                        concurrency = (unsigned) v;
                        break;
                }
                case 'd':
                        errno = 0;
                        duration = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(duration > 0) || duration > MAX_DURATION)
                                return bad_usage("bad --duration (seconds, up to 3600)", optarg);
                        duration_set = true;
                        break;
                case 'u':
                        until_signal = true;
                        break;
                case 'p':
                        path = optarg;
                        if (path[0] != '/' || strpbrk(path, " \r\n"))
                                return bad_usage("bad --path (must start with / and hold no spaces)", optarg);
                        break;
                case 'r':
                        errno = 0;
                        rate_limit = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(rate_limit > 0) || rate_limit > 1e7)
                                return bad_usage("bad --rate-limit (requests per second)", optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 1;
                }
        }
        if (optind < argc)
                return bad_usage("unexpected argument", argv[optind]);
        if (!target_s)
                return bad_usage("--target is required", NULL);
        if (duration_set && until_signal)
                return bad_usage("--duration and --until-signal exclude each other", NULL);
        r = parse_target(target_s);
        if (r == -2)
                return bad_usage("not a loopback address", target_s);
        if (r < 0)
                return bad_usage("bad --target (want HOST:PORT or [V6]:PORT, numeric)", target_s);

        r = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        if (r < 0 || (size_t) r >= sizeof request)
                return bad_usage("--path too long", NULL);
        request_len = (size_t) r;

        /* SIGTERM and SIGINT are taken with sigtimedwait() by the main
         * thread only; block them before any thread exists. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
                fprintf(stderr, PROG ": pthread_sigmask failed\n");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);

        workers = calloc(concurrency, sizeof *workers);
        if (!workers) {
                fprintf(stderr, PROG ": out of memory\n");
                return 1;
        }
        unsigned started = 0;
        for (unsigned i = 0; i < concurrency; i++) {
                workers[i].index = i;
                r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
                if (r != 0) {
                        fprintf(stderr, PROG ": pthread_create: %s\n", strerror(r));
                        break;
                }
                started++;
        }

        if (started == concurrency) {
                int64_t end_at = now_ns() + (int64_t) (duration * 1e9);

                for (;;) {
                        struct timespec ts;
                        int64_t left;

                        if (until_signal) {
                                ts.tv_sec = 3600;
                                ts.tv_nsec = 0;
                        } else {
                                left = end_at - now_ns();
                                if (left <= 0)
                                        break;
                                ts.tv_sec = left / 1000000000;
                                ts.tv_nsec = left % 1000000000;
                        }
                        r = sigtimedwait(&sigs, NULL, &ts);
                        if (r == SIGTERM || r == SIGINT)
                                break;
                }
        }
        atomic_store(&stop_flag, true);

        uint64_t sent = 0, ok = 0, failed = 0, refused = 0, errors = 0;
        struct pid_table all = {};
        bool oom = false;

        for (unsigned i = 0; i < started; i++) {
                struct worker *w = &workers[i];

                pthread_join(w->thread, NULL);
                sent += w->sent;
                ok += w->ok;
                failed += w->failed;
                refused += w->refused;
                errors += w->errors;
                oom |= w->oom;
                for (size_t j = 0; j < w->pids.n; j++) {
                        size_t k;

                        for (k = 0; k < all.n; k++)
                                if (all.v[k].pid == w->pids.v[j].pid)
                                        break;
                        if (k == all.n) {
                                if (all.n == all.cap) {
                                        size_t cap = all.cap ? 2 * all.cap : 16;
                                        struct pid_count *v = realloc(all.v, cap * sizeof *v);

                                        if (!v) {
                                                oom = true;
                                                continue;
                                        }
                                        all.v = v;
                                        all.cap = cap;
                                }
                                all.v[all.n++] = (struct pid_count) { .pid = w->pids.v[j].pid };
                        }
                        all.v[k].count += w->pids.v[j].count;
                }
                free(w->pids.v);
        }
        free(workers);

        if (started != concurrency)
                return 1;

        if (all.n > 0)
                qsort(all.v, all.n, sizeof *all.v, cmp_pid);
        printf("sent=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " refused=%" PRIu64 " errors=%" PRIu64 "\n",
               sent, ok, failed, refused, errors);
        printf("pids=");
        for (size_t k = 0; k < all.n; k++)
                printf("%s%ld:%" PRIu64, k ? "," : "", all.v[k].pid, all.v[k].count);
        printf("\n");
        free(all.v);
        if (oom)
                fprintf(stderr, PROG ": out of memory: pid counts are incomplete\n");
        fflush(stdout);
        return 0;
}
