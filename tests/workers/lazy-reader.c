/* lazy-reader: a test-only worker that loses requests the way uvicorn and
 * Puma do when they are stopped, but every time rather than now and then.
 *
 * It accepts every connection waiting on fd 3 as soon as it can (accept
 * until EAGAIN), but reads a connection's request only DELAY ms after it
 * accepted it (default 100), as a busy server's event loop or thread pool
 * does. On SIGTERM it stops accepting and closes every connection it has
 * accepted but not read yet, as uvicorn's shutdown closes idle connections
 * and Puma drops its unread backlog; requests it has read are answered. So
 * any connection accepted less than DELAY ms before its stop signal is
 * lost (the client sees the connection closed without an answer), unless
 * the manager stopped sending it new connections at least DELAY ms before
 * (sockherd's quiet-period).
 *
 * Answers "hello from pid P slot S\n" with Connection: close, like
 * examples/hello-worker.c, so tests/tools/loadgen counts them per pid.
 * Ready on start (sockherd's ready=exec or alive). Usage: lazy-reader [DELAY_MS]
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 4096

static volatile sig_atomic_t stopping;

static void on_term(int sig) {
        (void) sig;
        stopping = 1;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

struct pending {
        int fd;
        uint64_t due_ms;
};

static void answer(int fd, const char *slot) {
        char req[4096], body[128], resp[512];
        struct pollfd p = { .fd = fd, .events = POLLIN };

        /* the request: one read, waiting up to a second for it */
        if (poll(&p, 1, 1000) <= 0 || read(fd, req, sizeof(req)) <= 0)
                return;
        int n = snprintf(body, sizeof(body), "hello from pid %d slot %s\n", (int) getpid(), slot);
        int m = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         "Connection: close\r\n\r\n%s", n, body);
        (void) !write(fd, resp, (size_t) m);
}

int main(int argc, char **argv) {
        uint64_t delay = argc > 1 ? strtoull(argv[1], NULL, 10) : 100;
        const char *slot = getenv("SOCKHERD_SLOT") ?: "-";
        static struct pending pending[MAX_PENDING];
        size_t n = 0;
        struct sigaction sa = { .sa_handler = on_term };

        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        int lfd = 3;
        if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0)
                return 1;

        while (!stopping) {
                uint64_t now = now_ms();
                int timeout = 50;
                if (n > 0)
                        timeout = pending[0].due_ms > now ? (int) (pending[0].due_ms - now) : 0;
                struct pollfd p = { .fd = lfd, .events = POLLIN };
                (void) poll(&p, 1, timeout);
                if (stopping)
                        break;
                /* greedy: everything waiting */
                while (n < MAX_PENDING) {
                        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (c < 0)
                                break;
                        pending[n++] = (struct pending) { c, now_ms() + delay };
                }
                /* the ones whose time has come, oldest first */
                now = now_ms();
                size_t done = 0;
                while (done < n && pending[done].due_ms <= now && !stopping) {
                        answer(pending[done].fd, slot);
                        close(pending[done].fd);
                        done++;
                }
                memmove(pending, pending + done, (n - done) * sizeof(*pending));
                n -= done;
        }
        /* stopped: what was accepted and not read is dropped */
        close(lfd);
        for (size_t i = 0; i < n; i++)
                close(pending[i].fd);
        fprintf(stderr, "lazy-reader: pid %d slot %s stopped, dropped %zu unread connection(s)\n", (int) getpid(),
                slot, n);
        return 0;
}
