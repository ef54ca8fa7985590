/* probe-worker: a test-only sockherd worker for the integration tests.
 *
 * It records what it inherited from the manager, as the very first thing it
 * does (before it opens a file, installs a signal handler or forks), into a
 * report file that the tests read:
 *
 *     fd <n> <cloexec 0|1> <target of /proc/self/fd/n>   one per open fd
 *     env NAME=value | unset NAME    LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*,
 *                                    SOCKHERD_SLOT, SOCKHERD_GENERATION,
 *                                    MAINPID, SYSTEMD_EXEC_PID, FDSTORE
 *     env PROBE_...=value            every variable named PROBE_*
 *     pid <n> / ppid <n> / pgid <n> / sid <n>
 *     sigblk <hex> / sigign <hex>    SigBlk / SigIgn of /proc/self/status
 *     grandchild <pid>               with --fork-grandchild
 *
 * The report is written to FILE.tmp and renamed to FILE, so a reader never
 * sees half of it. Then the worker reports readiness the way it is told
 * and waits (or serves a minimal HTTP answer) until SIGTERM.
 *
 * Options:
 *   --report FILE        write the report; %p in FILE becomes the pid, %s the
 *                        slot (SOCKHERD_SLOT, "-" if unset), %% a '%'
 *   --ready MODE         notify (default): sd_notify READY=1 after the report;
 *                        none: never; delay:MS: READY=1 MS ms after the report;
 *                        helper: run `systemd-notify --ready` and wait for it
 *   --status TEXT        send STATUS=TEXT along with READY=1
 *   --ignore-sigterm     ignore SIGTERM, so only SIGKILL stops it
 *   --exit-after MS:CODE exit with CODE MS ms after start
 *   --fork-grandchild    fork a child that sleeps forever; its pid goes into
 *                        the report
 *   --serve              accept connections on fd 3 and answer each request
 *                        with "probe <pid> slot <slot>\n", Connection: close
 * SIGTERM (unless ignored) makes it exit 0. A bad option makes it exit 2.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define PROG "probe-worker"

enum ready_mode { READY_NOTIFY, READY_NONE, READY_DELAY, READY_HELPER };

struct options {
        const char *report;
        enum ready_mode ready;
        long ready_delay_ms;
        const char *status;
        bool ignore_sigterm;
        bool exit_after;
        long exit_after_ms;
        int exit_code;
        bool fork_grandchild;
        bool serve;
        bool watchdog;          /* send WATCHDOG=1 every WATCHDOG_USEC/2 */
        long allocate_mb;       /* touch this much memory after start */
};

static const char *const watched_env[] = {
        "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID",
        "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC",
        "SOCKHERD_SLOT", "SOCKHERD_GENERATION",
        "MAINPID", "SYSTEMD_EXEC_PID", "FDSTORE",
};

static volatile sig_atomic_t got_sigterm;

static void on_sigterm(int sig) {
        (void) sig;
        got_sigterm = 1;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *slot_or_dash(void) {
        const char *v = getenv("SOCKHERD_SLOT");
        return v && *v ? v : "-";
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: " PROG " [--report FILE] [--ready notify|none|delay:MS|helper]\n"
                "       [--status TEXT] [--ignore-sigterm] [--exit-after MS:CODE]\n"
                "       [--fork-grandchild] [--serve] [--watchdog] [--allocate MB]\n");
}

__attribute__((format(printf, 1, 2)))
static _Noreturn void bad_usage(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, PROG ": ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        usage(stderr);
        exit(2);
}

/* Parse a non-negative decimal number of at most INT_MAX; the whole string
 * must be digits. */
static bool parse_uint(const char *s, long *out) {
        char *end;
        long v;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > INT_MAX)
                return false;
        *out = v;
        return true;
}

static void parse_options(int argc, char **argv, struct options *o) {
        enum { OPT_REPORT = 256, OPT_READY, OPT_STATUS, OPT_IGNORE_SIGTERM,
               OPT_EXIT_AFTER, OPT_FORK_GRANDCHILD, OPT_SERVE, OPT_WATCHDOG, OPT_ALLOCATE,
               OPT_HELP };
        static const struct option longopts[] = {
                { "report",          required_argument, NULL, OPT_REPORT },
                { "ready",           required_argument, NULL, OPT_READY },
                { "status",          required_argument, NULL, OPT_STATUS },
                { "ignore-sigterm",  no_argument,       NULL, OPT_IGNORE_SIGTERM },
                { "exit-after",      required_argument, NULL, OPT_EXIT_AFTER },
                { "fork-grandchild", no_argument,       NULL, OPT_FORK_GRANDCHILD },
                { "serve",           no_argument,       NULL, OPT_SERVE },
                { "watchdog",        no_argument,       NULL, OPT_WATCHDOG },
                { "allocate",        required_argument, NULL, OPT_ALLOCATE },
                { "help",            no_argument,       NULL, OPT_HELP },
                { NULL, 0, NULL, 0 }
        };
        int c;

        opterr = 0;     /* we print our own messages */
        while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_REPORT:
                        if (!*optarg)
                                bad_usage("--report needs a file name");
                        o->report = optarg;
                        break;
                case OPT_READY:
                        if (strcmp(optarg, "notify") == 0)
                                o->ready = READY_NOTIFY;
                        else if (strcmp(optarg, "none") == 0)
                                o->ready = READY_NONE;
                        else if (strcmp(optarg, "helper") == 0)
                                o->ready = READY_HELPER;
                        else if (strncmp(optarg, "delay:", 6) == 0 && parse_uint(optarg + 6, &o->ready_delay_ms))
                                o->ready = READY_DELAY;
                        else
                                bad_usage("bad --ready mode '%s' (notify, none, delay:MS or helper)", optarg);
                        break;
                case OPT_STATUS:
                        if (strchr(optarg, '\n'))
                                bad_usage("--status text must be one line: '%s'", optarg);
                        o->status = optarg;
                        break;
                case OPT_IGNORE_SIGTERM:
                        o->ignore_sigterm = true;
                        break;
                case OPT_EXIT_AFTER: {
                        char buf[64];
                        char *colon;
                        long code;

                        if (strlen(optarg) >= sizeof buf)
                                bad_usage("bad --exit-after '%s' (MS:CODE)", optarg);
                        strcpy(buf, optarg);
                        colon = strchr(buf, ':');
                        if (!colon)
                                bad_usage("bad --exit-after '%s' (MS:CODE)", optarg);
                        *colon = '\0';
                        if (!parse_uint(buf, &o->exit_after_ms) || !parse_uint(colon + 1, &code) || code > 255)
                                bad_usage("bad --exit-after '%s' (MS:CODE, CODE 0..255)", optarg);
                        o->exit_after = true;
                        o->exit_code = (int) code;
                        break;
                }
                case OPT_FORK_GRANDCHILD:
                        o->fork_grandchild = true;
                        break;
                case OPT_SERVE:
                        o->serve = true;
                        break;
                case OPT_WATCHDOG:
                        o->watchdog = true;
                        break;
                case OPT_ALLOCATE:
                        if (!parse_uint(optarg, &o->allocate_mb) || o->allocate_mb > 4096)
                                bad_usage("bad --allocate '%s' (MB, 0..4096)", optarg);
                        break;
                case OPT_HELP:
                        usage(stdout);
                        exit(0);
                case ':':
                        bad_usage("option '%s' needs an argument", argv[optind - 1]);
                case '?':
                default:
                        if (optopt > 0 && optopt < 256)
                                bad_usage("unknown option '-%c'", optopt);
                        bad_usage("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind < argc)
                bad_usage("unexpected argument '%s'", argv[optind]);
}

/* ---- the snapshot of what we inherited -------------------------------- */

/* Append "fd" lines for every open fd except the one listing /proc/self/fd.
 * Must run before this program opens anything. */
static int snapshot_fds(FILE *out) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int dfd, n = 0, *fds = NULL;

        if (!d)
                return -errno;
        dfd = dirfd(d);
        while ((de = readdir(d))) {
                char *end;
                long fd;
                int *nfds;

                if (de->d_name[0] == '.')
                        continue;
                fd = strtol(de->d_name, &end, 10);
                if (*end != '\0' || fd < 0 || fd > INT_MAX || fd == dfd)
                        continue;
                nfds = realloc(fds, (size_t) (n + 1) * sizeof *fds);
                if (!nfds) {
                        free(fds);
                        closedir(d);
                        return -ENOMEM;
                }
                fds = nfds;
                fds[n++] = (int) fd;
        }

        /* readdir order is not numeric; tests are easier to read sorted. */
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
                        int t = fds[j];
                        fds[j] = fds[j - 1];
                        fds[j - 1] = t;
                }

        for (int i = 0; i < n; i++) {
                char path[64], target[PATH_MAX];
                ssize_t len;
                int flags = fcntl(fds[i], F_GETFD);

                snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
                len = readlink(path, target, sizeof target - 1);
                if (len < 0)
                        strcpy(target, "?");
                else
                        target[len] = '\0';
                fprintf(out, "fd %d %d %s\n", fds[i], flags >= 0 && (flags & FD_CLOEXEC) ? 1 : 0, target);
        }
        free(fds);
        closedir(d);
        return 0;
}

static void snapshot_env(FILE *out) {
        extern char **environ;

        for (size_t i = 0; i < sizeof watched_env / sizeof watched_env[0]; i++) {
                const char *v = getenv(watched_env[i]);
                if (v)
                        fprintf(out, "env %s=%s\n", watched_env[i], v);
                else
                        fprintf(out, "unset %s\n", watched_env[i]);
        }
        for (char **e = environ; e && *e; e++)
                if (strncmp(*e, "PROBE_", 6) == 0)
                        fprintf(out, "env %s\n", *e);
}

/* Copy the SigBlk and SigIgn masks from /proc/self/status. */
static void snapshot_signals(FILE *out) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];

        if (!f) {
                fprintf(out, "sigblk ?\nsigign ?\n");
                return;
        }
        while (fgets(line, sizeof line, f)) {
                char *v;

                if (strncmp(line, "SigBlk:", 7) == 0)
                        v = line + 7;
                else if (strncmp(line, "SigIgn:", 7) == 0)
                        v = line + 7;
                else
                        continue;
                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                fprintf(out, "%s %s\n", line[3] == 'B' ? "sigblk" : "sigign", v);
        }
        fclose(f);
}

/* Expand %p, %s and %% in the report path. */
static char *expand_path(const char *pattern) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (const char *p = pattern; *p; p++) {
                if (p[0] == '%' && p[1] == 'p') {
                        fprintf(f, "%d", (int) getpid());
                        p++;
                } else if (p[0] == '%' && p[1] == 's') {
                        fputs(slot_or_dash(), f);
                        p++;
                } else if (p[0] == '%' && p[1] == '%') {
                        fputc('%', f);
                        p++;
                } else
                        fputc(*p, f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static int write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t w = write(fd, buf, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += w;
                len -= (size_t) w;
        }
        return 0;
}

/* Write data to path.tmp, then rename it over path. */
static int write_report(const char *path, const char *data, size_t len) {
        char *tmp;
        int fd, r;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                return r;
        }
        r = write_all(fd, data, len);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        free(tmp);
        return r;
}

/* ---- readiness -------------------------------------------------------- */

static void send_ready(const struct options *o) {
        int r;

        if (o->status)
                r = sd_notifyf(0, "READY=1\nSTATUS=%s", o->status);
        else
                r = sd_notify(0, "READY=1");
        if (r < 0)
                fprintf(stderr, PROG ": sd_notify(READY=1): %s\n", strerror(-r));
        else if (r == 0)
                fprintf(stderr, PROG ": NOTIFY_SOCKET is not set, READY=1 not sent\n");
}

/* Run systemd-notify --ready and wait for it, the way a shell script would. */
static void run_notify_helper(const struct options *o, const sigset_t *orig_mask, const sigset_t *wait_mask) {
        sigset_t term_mask;
        char *status_arg = NULL;
        char *argv[4] = { (char *) "systemd-notify", (char *) "--ready", NULL, NULL };
        pid_t pid;
        int st = 0;
        bool reaped = false;

        if (o->status) {
                if (asprintf(&status_arg, "--status=%s", o->status) < 0) {
                        fprintf(stderr, PROG ": out of memory\n");
                        return;
                }
                argv[2] = status_arg;
        }

        sigemptyset(&term_mask);
        sigaddset(&term_mask, SIGTERM);

        pid = fork();
        if (pid < 0) {
                fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
                free(status_arg);
                return;
        }
        if (pid == 0) {
                /* The helper gets our stdio, not our sockets, and the signal
                 * mask we were started with. */
                if (close_range(3, ~0U, 0) < 0)
                        for (int fd = 3; fd < 1024; fd++)
                                close(fd);
                sigprocmask(SIG_SETMASK, orig_mask, NULL);
                execvp(argv[0], argv);
                fprintf(stderr, PROG ": exec systemd-notify: %s\n", strerror(errno));
                _exit(127);
        }
        free(status_arg);

        /* Wait with SIGTERM deliverable, so that a helper stuck on its
         * notification barrier does not make us ignore a stop. */
        sigprocmask(SIG_SETMASK, wait_mask, NULL);
        for (;;) {
                if (got_sigterm) {
                        fprintf(stderr, PROG ": SIGTERM while waiting for systemd-notify\n");
                        break;
                }
                if (waitpid(pid, &st, 0) == pid) {
                        reaped = true;
                        break;
                }
                if (errno != EINTR) {
                        fprintf(stderr, PROG ": waitpid: %s\n", strerror(errno));
                        break;
                }
        }
        sigprocmask(SIG_BLOCK, &term_mask, NULL);
        if (!reaped)
                return;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fprintf(stderr, PROG ": systemd-notify --ready failed (status 0x%x)\n", (unsigned) st);
}

/* ---- serving ---------------------------------------------------------- */

/* Answer one connection: read the request head (or whatever comes within a
 * few seconds), send the fixed answer, close. */
static void serve_connection(int fd) {
        struct timeval tv = { .tv_sec = 5 };
        char req[8192], body[128], resp[512];
        size_t len = 0;
        int n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

        while (len < sizeof req - 1) {
                ssize_t r = recv(fd, req + len, sizeof req - 1 - len, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                len += (size_t) r;
                req[len] = '\0';
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        if (len == 0)
                return;         /* connected and left, or timed out */

        snprintf(body, sizeof body, "probe %d slot %s\n", (int) getpid(), slot_or_dash());
        n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "%s", strlen(body), body);
        for (size_t off = 0; off < (size_t) n; ) {
                ssize_t w = send(fd, resp + off, (size_t) n - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                off += (size_t) w;
        }
        shutdown(fd, SHUT_WR);
}

static void accept_one(int lfd) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
                /* EAGAIN: another worker took it (or the socket is
                 * non-blocking); the others are the client's problem. */
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                        fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
                return;
        }
        serve_connection(fd);
        close(fd);
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv) {
        struct options o = { .ready = READY_NOTIFY };
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t term_mask, orig_mask, wait_mask;
        char *report = NULL;
        size_t report_len = 0;
        FILE *rep;
        int64_t start = now_ms(), ready_at = -1, exit_at = -1;
        bool ready_pending = false;
        int r;

        parse_options(argc, argv, &o);

        /* Snapshot first: nothing opened, no handler installed, no fork yet.
         * open_memstream keeps the text in memory, without an fd. */
        rep = open_memstream(&report, &report_len);
        if (!rep) {
                fprintf(stderr, PROG ": open_memstream: %s\n", strerror(errno));
                return 1;
        }
        r = snapshot_fds(rep);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot list /proc/self/fd: %s\n", strerror(-r));
                return 1;
        }
        snapshot_env(rep);
        fprintf(rep, "pid %d\n", (int) getpid());
        fprintf(rep, "ppid %d\n", (int) getppid());
        snapshot_signals(rep);
        fprintf(rep, "pgid %d\n", (int) getpgrp());
        fprintf(rep, "sid %d\n", (int) getsid(0));

        /* Forked before any handler is installed, so the grandchild keeps the
         * dispositions we inherited: SIGTERM kills it unless that was
         * ignored. It is meant to outlive us if the manager kills only us. */
        if (o.fork_grandchild) {
                pid_t pid;

                fflush(NULL);
                pid = fork();
                if (pid < 0) {
                        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
                        return 1;
                }
                if (pid == 0) {
                        for (;;)
                                pause();
                }
                fprintf(rep, "grandchild %d\n", (int) pid);
        }

        if (fclose(rep) != 0) {
                fprintf(stderr, PROG ": building the report: %s\n", strerror(errno));
                return 1;
        }

        /* SIGTERM: a flag, checked around ppoll() with SIGTERM blocked in
         * between, so it cannot slip in unseen. SIGTERM is unblocked while
         * waiting even if we inherited it blocked (the report says so). */
        sigemptyset(&term_mask);
        sigaddset(&term_mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &term_mask, &orig_mask);
        wait_mask = orig_mask;
        sigdelset(&wait_mask, SIGTERM);

        sigemptyset(&sa.sa_mask);
        sa.sa_handler = o.ignore_sigterm ? SIG_IGN : on_sigterm;
        if (sigaction(SIGTERM, &sa, NULL) < 0) {
                fprintf(stderr, PROG ": sigaction: %s\n", strerror(errno));
                return 1;
        }
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);

        if (o.report) {
                char *path = expand_path(o.report);

                if (!path) {
                        fprintf(stderr, PROG ": out of memory\n");
                        return 1;
                }
                r = write_report(path, report, report_len);
                if (r < 0) {
                        fprintf(stderr, PROG ": cannot write report %s: %s\n", path, strerror(-r));
                        return 1;
                }
                free(path);
        }
        free(report);

        if (o.serve && sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                fprintf(stderr, PROG ": --serve: fd %d is not a listening stream socket\n", SD_LISTEN_FDS_START);
                return 1;
        }
        /* accept() runs with SIGTERM blocked: when another worker wins the
         * connection poll() announced, a blocking accept() would sleep
         * through the stop signal */
        if (o.serve)
                (void) fcntl(SD_LISTEN_FDS_START, F_SETFL, fcntl(SD_LISTEN_FDS_START, F_GETFL) | O_NONBLOCK);

        switch (o.ready) {
        case READY_NOTIFY:
                send_ready(&o);
                break;
        case READY_HELPER:
                run_notify_helper(&o, &orig_mask, &wait_mask);
                break;
        case READY_DELAY:
                ready_pending = true;
                ready_at = now_ms() + o.ready_delay_ms;
                break;
        case READY_NONE:
                break;
        }
        if (o.exit_after)
                exit_at = start + o.exit_after_ms;
        if (o.allocate_mb > 0) {
                size_t n = (size_t) o.allocate_mb << 20;
                char *mem = malloc(n);
                if (!mem) {
                        fprintf(stderr, PROG ": cannot allocate %ld MB\n", o.allocate_mb);
                        return 1;
                }
                memset(mem, 1, n); /* resident, not just reserved */
        }
        uint64_t watchdog_usec = 0;
        int64_t ping_at = -1;
        if (o.watchdog && sd_watchdog_enabled(0, &watchdog_usec) > 0)
                ping_at = now_ms();

        while (!got_sigterm) {
                struct pollfd pfd = { .fd = SD_LISTEN_FDS_START, .events = POLLIN };
                struct timespec ts, *tsp = NULL;
                int64_t now = now_ms(), next = INT64_MAX;

                if (ready_pending && now >= ready_at) {
                        send_ready(&o);
                        ready_pending = false;
                }
                if (ping_at >= 0 && now >= ping_at) {
                        sd_notify(0, "WATCHDOG=1");
                        ping_at = now + (int64_t) (watchdog_usec / 2000);
                }
                if (exit_at >= 0 && now >= exit_at) {
                        fprintf(stderr, PROG ": pid %d exiting with %d as told\n", (int) getpid(), o.exit_code);
                        return o.exit_code;
                }
                if (ready_pending)
                        next = ready_at;
                if (exit_at >= 0 && exit_at < next)
                        next = exit_at;
                if (ping_at >= 0 && ping_at < next)
                        next = ping_at;
                if (next != INT64_MAX) {
                        ts.tv_sec = (next - now) / 1000;
                        ts.tv_nsec = (long) ((next - now) % 1000) * 1000000;
                        tsp = &ts;
                }

                r = ppoll(o.serve ? &pfd : NULL, o.serve ? 1 : 0, tsp, &wait_mask);
                if (r < 0 && errno != EINTR) {
                        fprintf(stderr, PROG ": ppoll: %s\n", strerror(errno));
                        return 1;
                }
                if (r > 0 && !got_sigterm)
                        accept_one(SD_LISTEN_FDS_START);
        }

        return 0;
}
