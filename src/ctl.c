/* sockherdctl: talk to a running sockherd through its control socket.
 *
 *   sockherdctl [--control PATH | -u NAME] [--json] COMMAND
 *
 * Exit codes: 0 ok; 1 the manager answered with an error (a failed reload,
 * say) or could not be reached; 2 usage. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockherd/control.h"
#include "sockherd/control-protocol.h"
#include "sockherd/exit-status.h"
#include "sockherd/parse.h"
#include "sockherd/strbuf.h"
#include "sockherd/util.h"


static void help(void) {
        printf("Usage: sockherdctl [--control PATH | -u NAME] [--json] COMMAND\n"
               "\n"
               "Commands:\n"
               "  status              workers and pool summary\n"
               "  show                Key=Value lines, like systemctl show\n"
               "  metrics             Prometheus text exposition of the workers' load\n"
               "  reload [--wait]     rolling reload; with --wait, wait for the end and fail if it failed\n"
               "  scale N             set the number of workers\n"
               "  restart SLOT|all    restart one worker or all of them, new before old (waits)\n"
               "  reexec              re-execute the manager's program in place (an upgrade);\n"
               "                      workers keep running, the manager keeps its pid\n"
               "\n"
               "Options:\n"
               "  -u, --name NAME     the pool named NAME (its control socket in the default place)\n"
               "      --control PATH  the control socket at PATH\n"
               "      --json          print status/show as JSON\n"
               "  -h, --help          show this help\n"
               "      --version       show the version\n");
}

/* ---- the reply as a list of key/value pairs ---- */

typedef struct Field {
        char *key;
        char *value;
} Field;

typedef struct Fields {
        Field *v;
        size_t n;
} Fields;

static void collect(const char *key, const char *value, void *userdata) {
        Fields *f = userdata;
        (void) ARRAY_APPEND(f->v, f->n, (Field) { strdup(key), strdup(value) });
}

static const char *field(const Fields *f, const char *key) {
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].key && strcmp(f->v[i].key, key) == 0)
                        return f->v[i].value;
        return NULL;
}

/* fieldf(f, "worker", 2, "pid") is the value of worker.2.pid, or "" */
static const char *fieldf(const Fields *f, const char *group, unsigned index, const char *name) {
        char key[128];
        snprintf(key, sizeof(key), "%s.%u.%s", group, index, name);
        const char *v = field(f, key);
        return v ? v : "";
}

/* ---- finding the socket ---- */

/* With no name given, a single pool under the default directories is the one. */
static char *find_only_pool(void) {
        char *found = NULL;
        unsigned count = 0;

        for (int system = 1; system >= 0; system--) {
                _cleanup_free_ char *dir = control_dir(system);
                DIR *d = dir ? opendir(dir) : NULL;
                if (!d)
                        continue;
                struct dirent *de;
                while ((de = readdir(d))) {
                        char *path;
                        if (de->d_name[0] == '.' || asprintf(&path, "%s/%s/control", dir, de->d_name) < 0)
                                continue;
                        if (access(path, F_OK) == 0) {
                                count++;
                                free(found);
                                found = path;
                        } else
                                free(path);
                }
                closedir(d);
        }
        if (count != 1) {
                if (count > 1)
                        fprintf(stderr, "sockherdctl: several pools are running: name one with -u NAME\n");
                free(found);
                return NULL;
        }
        return found;
}

static int connect_control(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Send one request and read the whole reply (until the manager closes). */
static int exchange(const char *path, const char *request, int timeout_ms, char **ret_reply) {
        _cleanup_close_ int fd = connect_control(path);
        if (fd < 0)
                return fd;

        char line[CONTROL_REQUEST_MAX + 2];
        int len = snprintf(line, sizeof(line), "%s %s\n", CONTROL_PROTOCOL, request);
        if (len < 0 || (size_t) len >= sizeof(line))
                return -E2BIG;
        /* a refusal may come before the request is even read: on a failed
         * send, still read what the manager said */
        int send_error = send(fd, line, (size_t) len, MSG_NOSIGNAL) == len ? 0 : -errno;

        _cleanup_strbuf_ StrBuf reply = {};
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                if (r == 0)
                        return -ETIMEDOUT;
                if (r < 0 && errno == EINTR)
                        continue;
                size_t room;
                char *end = strbuf_reserve(&reply, 4096, &room);
                if (!end)
                        return strbuf_error(&reply);
                ssize_t n = read(fd, end, room);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && reply.size > 0)
                        break; /* a reset after the reply: the reply is what counts */
                if (n < 0)
                        return send_error < 0 ? send_error : -errno;
                if (n == 0)
                        break;
                strbuf_commit(&reply, (size_t) n);
        }
        if (reply.size == 0 && send_error < 0)
                return send_error;
        return strbuf_steal(&reply, ret_reply, NULL);
}

/* ---- output ---- */

static void json_string(const char *s) {
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

/* an unsigned integer without leading zeros, or one with a fraction ("12.5") */
static bool is_number(const char *s) {
        bool dot = false;
        if (!isdigit((unsigned char) *s) || (s[0] == '0' && s[1] && s[1] != '.'))
                return false;
        for (; *s; s++) {
                if (*s == '.' && !dot && isdigit((unsigned char) s[1]))
                        dot = true;
                else if (!isdigit((unsigned char) *s))
                        return false;
        }
        return true;
}

static void json_value(const char *s) {
        if (is_number(s))
                fputs(s, stdout);
        else
                json_string(s);
}

/* "worker.3.pid" -> ("worker", 3, "pid"); false for a pool-level key */
static bool indexed_key(const char *key, char *group, size_t gsize, unsigned *index, const char **name) {
        const char *dot = strchr(key, '.');
        if (!dot || !isdigit((unsigned char) dot[1]))
                return false;
        char *end;
        unsigned long i = strtoul(dot + 1, &end, 10);
        if (*end != '.')
                return false;
        snprintf(group, gsize, "%.*s", (int) (dot - key), key);
        *index = (unsigned) i;
        *name = end + 1;
        return true;
}

static void print_json(const Fields *f) {
        bool first = true;
        printf("{");
        for (size_t i = 0; i < f->n; i++) {
                char group[32];
                unsigned index;
                const char *name;
                if (indexed_key(f->v[i].key, group, sizeof(group), &index, &name))
                        continue;
                printf("%s", first ? "" : ",");
                first = false;
                json_string(f->v[i].key);
                putchar(':');
                json_value(f->v[i].value);
        }
        /* arrays: workers, sockets */
        static const char *const groups[] = { "worker", "socket", "slot" };
        for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
                printf("%s\"%ss\":[", first ? "" : ",", groups[g]);
                first = false;
                for (unsigned index = 0;; index++) {
                        bool any = false;
                        for (size_t i = 0; i < f->n; i++) {
                                char group[32];
                                unsigned idx;
                                const char *name;
                                if (!indexed_key(f->v[i].key, group, sizeof(group), &idx, &name) ||
                                    strcmp(group, groups[g]) != 0 || idx != index)
                                        continue;
                                printf("%s", any ? "," : (index ? ",{" : "{"));
                                any = true;
                                json_string(name);
                                putchar(':');
                                json_value(f->v[i].value);
                        }
                        if (!any)
                                break;
                        putchar('}');
                }
                putchar(']');
        }
        printf("}\n");
}

/* "workers.ready" -> "WorkersReady", "worker.0.pid" -> "Worker0Pid" */
static void print_show(const Fields *f) {
        for (size_t i = 0; i < f->n; i++) {
                bool upper = true;
                for (const char *p = f->v[i].key; *p; p++) {
                        if (*p == '.' || *p == '_') {
                                upper = true;
                                continue;
                        }
                        putchar(upper ? toupper((unsigned char) *p) : *p);
                        upper = false;
                }
                printf("=%s\n", f->v[i].value);
        }
}

static const char *format_uptime(const char *usec_text, char buf[static 32]) {
        uint64_t usec = strtoull(usec_text, NULL, 10), s = usec / USEC_PER_SEC;
        if (s < 60)
                snprintf(buf, 32, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, 32, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, 32, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
        else
                snprintf(buf, 32, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
        return buf;
}

static const char *format_bytes(const char *text, char buf[static 32]) {
        if (!*text)
                return "-";
        uint64_t b = strtoull(text, NULL, 10);
        if (b >= (UINT64_C(1) << 30))
                snprintf(buf, 32, "%.1fG", (double) b / (double) (UINT64_C(1) << 30));
        else if (b >= (UINT64_C(1) << 20))
                snprintf(buf, 32, "%.1fM", (double) b / (double) (UINT64_C(1) << 20));
        else
                snprintf(buf, 32, "%" PRIu64 "K", b >> 10);
        return buf;
}

static const char *format_delay(const char *usec_text, char buf[static 32]) {
        uint64_t ms = strtoull(usec_text, NULL, 10) / USEC_PER_MSEC;
        if (ms < 1000)
                snprintf(buf, 32, "%" PRIu64 "ms", ms);
        else
                snprintf(buf, 32, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms % 1000 / 100);
        return buf;
}

#define ROW_FORMAT "  %-5s %-8s %-4s %-10s %-9s %-8s %-8s %6s %8s %5s %s\n"

/* The rows of slots from *from up to (not including) to that have no
 * worker (in backoff, in a crash loop, stopped): they would be missing from
 * a table of workers. */
static void print_workerless_slots(const Fields *f, unsigned *from, unsigned to) {
        for (; *from < to; (*from)++) {
                unsigned s = *from;
                const char *state = fieldf(f, "slot", s, "state");
                if (!*state)
                        break;
                if (strcmp(state, "backoff") != 0 && strcmp(state, "crash-loop") != 0 && strcmp(state, "stopped") != 0)
                        continue;
                char slot[16], next[32], status[256];
                const char *last = fieldf(f, "slot", s, "last_exit"), *at = fieldf(f, "slot", s, "next_start_usec");
                snprintf(slot, sizeof(slot), "%u", s);
                snprintf(status, sizeof(status), "%s%s%s%s%s", *last ? "last worker " : "", last,
                         *last && *at ? "; " : "", *at ? "next start in " : "", *at ? format_delay(at, next) : "");
                printf(ROW_FORMAT, slot, "-", fieldf(f, "slot", s, "generation"), state, "-", "-",
                       fieldf(f, "slot", s, "restarts"), "-", "-", "-", status);
        }
}

static void print_status(const Fields *f) {
        const char *last_error = field(f, "reload.last_error");
        printf("%s: %s\n", field(f, "name") ?: "?", field(f, "status") ?: "");
        printf("  manager pid:  %s\n", field(f, "manager.pid") ?: "?");
        printf("  version:      sockherd %s\n", field(f, "manager.version") ?: "?");
        printf("  command:      %s (ready=%s)\n", field(f, "command") ?: "?", field(f, "ready_mode") ?: "?");
        printf("  reload:       %s\n", field(f, "reload.state") ?: "?");
        const char *reason = field(f, "balance.reason");
        printf("  balance:      %s%s%s%s\n", field(f, "balance") ?: "?", reason && *reason ? " (" : "",
               reason && *reason ? reason : "", reason && *reason ? ")" : "");
        if (field(f, "balance.jain_connections")) {
                printf("  balancer:     live connections per slot:");
                for (unsigned i = 0;; i++) {
                        const char *n = fieldf(f, "slot", i, "connections");
                        if (!*n)
                                break;
                        printf("%s %s", i ? "," : "", n);
                }
                printf(" (fairness %s, 1 is even)\n", field(f, "balance.jain_connections"));
        }
        if (last_error && *last_error)
                printf("  last failure: %s\n", last_error);
        for (unsigned i = 0;; i++) {
                const char *name = fieldf(f, "socket", i, "name");
                if (!*name)
                        break;
                const char *lowered = fieldf(f, "socket", i, "backlog_lowered_from");
                printf("  socket %u:     %s (%s)%s%s%s%s%s%s%s\n", i, fieldf(f, "socket", i, "address"), name,
                       *fieldf(f, "socket", i, "queue") ? ", queue " : "", fieldf(f, "socket", i, "queue"),
                       *fieldf(f, "socket", i, "backlog") ? "/" : "", fieldf(f, "socket", i, "backlog"),
                       *lowered ? " (backlog lowered from " : "", lowered,
                       *lowered ? " by a worker's listen() call)" : "");
        }
        const char *warning = field(f, "imbalance.warning");
        if (field(f, "imbalance.jain_cpu"))
                printf("  fairness:     CPU %s, connections %s (1 is even)%s%s\n", field(f, "imbalance.jain_cpu"),
                       field(f, "imbalance.jain_conn") ?: "?", warning && *warning ? "; uneven: " : "",
                       warning && *warning ? warning : "");
        printf("\n" ROW_FORMAT, "SLOT", "PID", "GEN", "STATE", "ROLE", "UPTIME", "RESTARTS", "CPU%", "RSS", "CONNS",
               "STATUS");
        /* workers come in slot order, retiring ones last; a slot without a
         * worker gets a row of its own in its place */
        unsigned next_slot = 0;
        for (unsigned i = 0;; i++) {
                const char *pid = fieldf(f, "worker", i, "pid");
                char up[32];
                if (!*pid)
                        break;
                bool retiring = strcmp(fieldf(f, "worker", i, "role"), "retiring") == 0;
                unsigned slot = (unsigned) strtoul(fieldf(f, "worker", i, "slot"), NULL, 10);
                print_workerless_slots(f, &next_slot, retiring ? UINT_MAX : slot);
                char rss[32];
                printf(ROW_FORMAT, fieldf(f, "worker", i, "slot"), pid,
                       fieldf(f, "worker", i, "generation"), fieldf(f, "worker", i, "state"),
                       fieldf(f, "worker", i, "role"),
                       format_uptime(fieldf(f, "worker", i, "uptime_usec"), up),
                       fieldf(f, "worker", i, "restarts"),
                       *fieldf(f, "worker", i, "cpu_percent") ? fieldf(f, "worker", i, "cpu_percent") : "-",
                       format_bytes(fieldf(f, "worker", i, "rss_bytes"), rss),
                       *fieldf(f, "worker", i, "connections") ? fieldf(f, "worker", i, "connections") : "-",
                       fieldf(f, "worker", i, "status"));
        }
        print_workerless_slots(f, &next_slot, UINT_MAX);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "control", required_argument, NULL, 'C' },
                { "name",    required_argument, NULL, 'u' },
                { "json",    no_argument,       NULL, 'j' },
                { "help",    no_argument,       NULL, 'h' },
                { "version", no_argument,       NULL, 'V' },
                {}
        };
        _cleanup_free_ char *path = NULL, *reply = NULL;
        const char *name = NULL;
        bool json = false;
        int opt;

        while ((opt = getopt_long(argc, argv, "+u:h", options, NULL)) >= 0)
                switch (opt) {
                case 'C': free(path); path = strdup(optarg); break;
                case 'u': name = optarg; break;
                case 'j': json = true; break;
                case 'h': help(); return 0;
                case 'V': printf("sockherdctl %s\n", SOCKHERD_VERSION); return 0;
                default: fprintf(stderr, "Try 'sockherdctl --help'.\n"); return EXIT_USAGE;
                }

        if (optind >= argc) {
                fprintf(stderr, "sockherdctl: no command given (status, show, metrics, reload, scale, restart, reexec)\n");
                return EXIT_USAGE;
        }
        const char *command = argv[optind];
        char request[CONTROL_REQUEST_MAX];
        int timeout_ms = 30 * 1000;
        bool listing = false;

        if (strcmp(command, "status") == 0 || strcmp(command, "show") == 0) {
                if (argc - optind != 1)
                        goto usage;
                snprintf(request, sizeof(request), "status");
                listing = true;
        } else if (strcmp(command, "metrics") == 0) {
                if (argc - optind != 1)
                        goto usage;
                snprintf(request, sizeof(request), "metrics");
        } else if (strcmp(command, "reload") == 0) {
                bool wait = argc - optind == 2 && strcmp(argv[optind + 1], "--wait") == 0;
                if (argc - optind > 2 || (argc - optind == 2 && !wait))
                        goto usage;
                snprintf(request, sizeof(request), "reload%s", wait ? " --wait" : "");
                if (wait)
                        timeout_ms = -1; /* as long as the reload takes; systemd's TimeoutSec bounds it */
        } else if (strcmp(command, "scale") == 0) {
                unsigned n;
                if (argc - optind != 2 || parse_uint_range(argv[optind + 1], 1, 1024, &n) < 0)
                        goto usage;
                snprintf(request, sizeof(request), "scale %u", n);
        } else if (strcmp(command, "restart") == 0) {
                unsigned n;
                if (argc - optind != 2 ||
                    (strcmp(argv[optind + 1], "all") != 0 && parse_uint_range(argv[optind + 1], 0, 1023, &n) < 0))
                        goto usage;
                snprintf(request, sizeof(request), "restart %s", argv[optind + 1]);
                timeout_ms = -1;
        } else if (strcmp(command, "reexec") == 0) {
                if (argc - optind != 1)
                        goto usage;
                snprintf(request, sizeof(request), "reexec");
        } else {
                fprintf(stderr, "sockherdctl: unknown command '%s' (status, show, metrics, reload, scale, restart, reexec)\n", command);
                return EXIT_USAGE;
        }

        if (!path) {
                path = name ? control_default_path(name, true) : find_only_pool();
                if (!path) {
                        fprintf(stderr, "sockherdctl: no control socket found: give -u NAME or --control PATH\n");
                        return EXIT_RUNTIME;
                }
        }

        int r = exchange(path, request, timeout_ms, &reply);
        if (r < 0) {
                fprintf(stderr, "sockherdctl: %s: %s%s\n", path, strerror(-r),
                        r == -ENOENT || r == -ECONNREFUSED ? " (is the pool running?)" : "");
                return EXIT_RUNTIME;
        }

        Fields fields = {};
        const char *error = NULL;
        r = control_reply_parse(reply, &error, collect, &fields);
        int ret = 0;
        if (r < 0) {
                fprintf(stderr, "sockherdctl: %s: not a sockherd control socket (unexpected reply)\n", path);
                ret = EXIT_RUNTIME;
        } else if (error) {
                fprintf(stderr, "sockherdctl: %s failed: %s\n", command, error);
                ret = EXIT_RUNTIME;
        } else if (listing) {
                if (json)
                        print_json(&fields);
                else if (strcmp(command, "show") == 0)
                        print_show(&fields);
                else
                        print_status(&fields);
        } else if (strcmp(command, "metrics") == 0)
                fputs(field(&fields, "text") ?: "", stdout);
        else if (strcmp(command, "reload") == 0)
                printf(strstr(request, "--wait") ? "reload complete: generation %s\n" : "reload started (generation %s serving)\n",
                       field(&fields, "generation") ?: "?");
        else if (strcmp(command, "scale") == 0)
                printf("workers: %s\n", field(&fields, "workers.wanted") ?: "?");
        else if (strcmp(command, "restart") == 0)
                printf("restart complete\n");
        else if (strcmp(command, "reexec") == 0)
                printf("re-executing manager pid %s\n", field(&fields, "manager.pid") ?: "?");

        for (size_t i = 0; i < fields.n; i++) {
                free(fields.v[i].key);
                free(fields.v[i].value);
        }
        free(fields.v);
        return ret;

usage:
        fprintf(stderr, "sockherdctl: usage: %s; see sockherdctl --help\n",
                strcmp(command, "reload") == 0 ? "reload [--wait]" :
                strcmp(command, "scale") == 0 ? "scale N" :
                strcmp(command, "restart") == 0 ? "restart SLOT|all" : command);
        return EXIT_USAGE;
}
