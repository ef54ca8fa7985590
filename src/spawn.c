/* Building and executing a worker's spawn plan (see spawn.h). The child
 * side does what systemd does for a service, in the same order: default
 * signal dispositions and an empty mask (sd-event blocks signals, and a
 * blocked mask survives exec), a new session, fds moved to 3.. with CLOEXEC
 * cleared, every other fd closed, under journald stdout and stderr to a
 * journal stream of its own, credentials, LISTEN_PID set to its own pid,
 * then exec. PR_SET_PDEATHSIG makes a worker die with its manager.
 * That covers the worker only: a descendant that leaves its process group
 * (setsid) is handled by the manager as a subreaper (subreaper.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "sockherd/spawn.h"
#include "sockherd/strbuf.h"
#include "sockherd/util.h"

/* A worker inherits the manager's environment, as a service's processes
 * inherit systemd's (Environment=, EnvironmentFile=, CREDENTIALS_DIRECTORY
 * of the unit), then environment= on top, then the protocol's own. With
 * clean-environment = yes it is built from scratch instead: only these
 * variables (and any LC_*) are taken from the manager's environment when
 * set, then the names in pass-environment. */
const char *const spawn_default_passed_variables[] = {
        "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR",
        "JOURNAL_STREAM", "INVOCATION_ID",
        "RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY", NULL,
};

/* In either mode, never taken from the manager's environment (not even
 * when pass-environment names them): they describe the manager's own
 * protocol with systemd (its sockets, its notify socket, its watchdog, its
 * pid, its fd store), or what sockherd sets for each worker itself. A
 * worker that found systemd's NOTIFY_SOCKET could speak for the whole
 * service; one that found the manager's LISTEN_* or WATCHDOG_* would take
 * them for its own. Exact names only: an app's LISTEN_PORT is its own.
 * What describes the service rather than the manager stays:
 * INVOCATION_ID, JOURNAL_STREAM (a worker's stderr is the manager's;
 * under journald spawn_plan_use_journal_stream() replaces it with the
 * worker's own stream), MANAGERPID (systemd's user manager), TRIGGER_*,
 * MONITOR_*. */
const char *const spawn_manager_variables[] = {
        "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID",
        "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC",
        "MAINPID", "SYSTEMD_EXEC_PID", "FDSTORE",
        "SOCKHERD_SLOT", "SOCKHERD_GENERATION", NULL,
};

#define SPAWN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* room for any pid after "LISTEN_PID=" */
#define LISTEN_PID_PLACEHOLDER "LISTEN_PID=0000000000"
#define WATCHDOG_PID_PLACEHOLDER "WATCHDOG_PID=0000000000"

static bool env_name_matches(const char *entry, const char *name) {
        size_t n = strlen(name);
        return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static size_t env_name_length(const char *entry) {
        return strcspn(entry, "=");
}

static bool env_name_in(const char *entry, char *const *names) {
        for (char *const *n = names; n && *n; n++)
                if (env_name_matches(entry, *n))
                        return true;
        return false;
}

static bool env_is_passed(const Config *c, const char *entry) {
        if (env_name_in(entry, (char *const *) spawn_manager_variables))
                return false;
        if (!c->clean_environment)
                return true;
        return strncmp(entry, "LC_", 3) == 0 ||
               env_name_in(entry, (char *const *) spawn_default_passed_variables) ||
               env_name_in(entry, c->pass_environment);
}

static bool env_find(char *const *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (env_name_matches(v[i], name))
                        return true;
        return false;
}

typedef struct EnvBuilder {
        char **v;
        size_t n;
} EnvBuilder;

/* Add or replace NAME=VALUE; returns the index or -ENOMEM. */
static ssize_t env_put(EnvBuilder *b, char *entry) {
        if (!entry)
                return -ENOMEM;
        size_t len = env_name_length(entry);
        for (size_t i = 0; i < b->n; i++)
                if (env_name_length(b->v[i]) == len && strncmp(b->v[i], entry, len) == 0) {
                        free(b->v[i]);
                        b->v[i] = entry;
                        return (ssize_t) i;
                }
        int r = strv_push(&b->v, entry);
        if (r < 0)
                return r;
        return (ssize_t) b->n++;
}

_printf_(1, 2)
static char *strdup_printf(const char *fmt, ...) {
        char *s;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int spawn_plan_build(const Config *c, const ListenSet *sockets, const int *slot_fds, unsigned slot,
                     uint64_t generation, const char *notify_address, char *const *environment, SpawnPlan *ret) {
        EnvBuilder env = {};
        _cleanup_free_ char *names = NULL;
        _cleanup_free_ int *fds = NULL;
        ssize_t listen_pid_index = -1, watchdog_pid_index = -1;
        int r = -ENOMEM;

        for (char *const *e = environment; e && *e; e++)
                if (env_is_passed(c, *e) && env_put(&env, strdup(*e)) < 0)
                        goto fail;
        if (!env_find(env.v, env.n, "PATH") && env_put(&env, strdup("PATH=" SPAWN_DEFAULT_PATH)) < 0)
                goto fail;
        /* as systemd's User= does: the manager's own would be root's */
        if (c->user && (env_put(&env, strdup_printf("USER=%s", c->user)) < 0 ||
                        env_put(&env, strdup_printf("LOGNAME=%s", c->user)) < 0 ||
                        (c->user_home && env_put(&env, strdup_printf("HOME=%s", c->user_home)) < 0) ||
                        (c->user_shell && env_put(&env, strdup_printf("SHELL=%s", c->user_shell)) < 0)))
                goto fail;
        for (char **e = c->environment; e && *e; e++)
                if (env_put(&env, strdup(*e)) < 0)
                        goto fail;

        /* the protocol's own variables last, so nothing above can override them */
        names = listen_set_names(sockets);
        if (!names)
                goto fail;
        if (env_put(&env, strdup_printf("LISTEN_FDS=%zu", sockets->n)) < 0 ||
            env_put(&env, strdup_printf("LISTEN_FDNAMES=%s", names)) < 0 ||
            (listen_pid_index = env_put(&env, strdup(LISTEN_PID_PLACEHOLDER))) < 0 ||
            env_put(&env, strdup_printf("SOCKHERD_SLOT=%u", slot)) < 0 ||
            env_put(&env, strdup_printf("SOCKHERD_GENERATION=%" PRIu64, generation)) < 0 ||
            (notify_address && env_put(&env, strdup_printf("NOTIFY_SOCKET=%s", notify_address)) < 0))
                goto fail;
        if (c->watchdog_usec > 0 &&
            (env_put(&env, strdup_printf("WATCHDOG_USEC=%" PRIu64, c->watchdog_usec)) < 0 ||
             (watchdog_pid_index = env_put(&env, strdup(WATCHDOG_PID_PLACEHOLDER))) < 0))
                goto fail;

        fds = calloc(sockets->n ? sockets->n : 1, sizeof(int));
        if (!fds)
                goto fail;
        for (size_t i = 0; i < sockets->n; i++)
                fds[i] = slot_fds && slot_fds[i] >= 0 ? slot_fds[i] : sockets->sockets[i].fd;

        *ret = (SpawnPlan) {
                .argv = c->command,
                .envp = env.v,
                .listen_pid_index = (size_t) listen_pid_index,
                .watchdog_pid_index = watchdog_pid_index < 0 ? SIZE_MAX : (size_t) watchdog_pid_index,
                .fds = TAKE_PTR(fds),
                .n_fds = sockets->n,
                .working_directory = c->working_directory_resolved ?: c->working_directory,
                .uid = c->uid,
                .gid = c->gid,
                .groups = c->groups,
                .n_groups = c->n_groups,
                .set_groups = c->set_groups,
                .no_new_privileges = c->no_new_privileges,
                .manager_pid = getpid(),
        };
        return 0;

fail:
        strv_free(env.v);
        return r;
}

/* room for "DEV:INODE", two 64-bit numbers, after "JOURNAL_STREAM=" */
#define JOURNAL_STREAM_PLACEHOLDER "JOURNAL_STREAM=00000000000000000000:00000000000000000000"

int spawn_plan_use_journal_stream(SpawnPlan *p, const char *identifier, const char *unit) {
        EnvBuilder env = { .v = p->envp, .n = strv_length(p->envp) };
        ssize_t i = env_put(&env, strdup(JOURNAL_STREAM_PLACEHOLDER));
        p->envp = env.v;
        if (i < 0)
                return (int) i;
        p->journal_identifier = identifier;
        p->journal_unit = unit;
        p->journal_stream_index = (size_t) i;
        return 0;
}

void spawn_plan_done(SpawnPlan *p) {
        strv_free(p->envp);
        free(p->fds);
        *p = (SpawnPlan) {};
}

/* Child side helpers: no allocation, no stdio.
 *
 * Where the child's own messages go, set in the child only: the manager's
 * stderr (also once the worker's stdout and stderr are its journal stream:
 * a copy closed by exec), and with an "<N>" level prefix when that is the
 * journal, which names the sender itself, else with "sockherd: ". */
static int child_error_fd = STDERR_FILENO;
static bool child_error_to_journal = false;

static void child_write_pid(char *dst, pid_t pid) {
        char digits[16];
        size_t n = 0;
        unsigned long v = (unsigned long) pid;
        do {
                digits[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v && n < sizeof(digits));
        while (n)
                *dst++ = digits[--n];
        *dst = '\0';
}

_printf_(2, 0)
static void child_say(int priority, const char *fmt, va_list ap) {
        char buf[512];
        StrBuf b;

        /* a fixed buffer: no allocation in the child; a long message is cut */
        strbuf_init_fixed(&b, buf, sizeof(buf));
        if (child_error_to_journal)
                strbuf_printf(&b, "<%d>", priority);
        else
                strbuf_puts(&b, "sockherd: ");
        size_t prefix = b.size;
        strbuf_vprintf(&b, fmt, ap);
        if (b.size > prefix)
                (void) !write(child_error_fd, b.data, b.size);
}

_printf_(2, 3) _Noreturn
static void child_fail(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        child_say(LOG_ERR, fmt, ap);
        va_end(ap);
        _exit(code);
}

_printf_(1, 2)
static void child_warn(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        child_say(LOG_WARNING, fmt, ap);
        va_end(ap);
}

static int child_reset_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t all;

        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        /* glibc's sigaction() refuses the signals it reserves for itself
         * (32 and 33, below SIGRTMIN), so an inherited SIG_IGN there (GNU
         * make 4.3 leaves both ignored for its children, e.g. in a package
         * build) would reach the worker. Ask the kernel directly: an
         * all-zero kernel sigaction is SIG_DFL, no flags, an empty mask, in
         * every architecture's layout. */
        for (int sig = 32; sig < SIGRTMIN; sig++) {
                uint64_t ksa[8] = {};
                (void) syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t) (_NSIG / 8));
        }
        sigemptyset(&all);
        return sigprocmask(SIG_SETMASK, &all, NULL) < 0 ? -errno : 0;
}

/* Move the listening fds to 3, 4, ... without one clobbering another: first
 * copy them all above the target range, then into place. dup2() leaves
 * CLOEXEC off on the copy, which is what the worker must inherit. */
static int child_place_fds(const int *fds, size_t n) {
        int high[CONFIG_LISTEN_MAX + 256];
        int first = 3 + (int) n;

        if (n > ELEMENTSOF(high))
                return -EMFILE;
        for (size_t i = 0; i < n; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, first);
                if (high[i] < 0)
                        return -errno;
        }
        for (size_t i = 0; i < n; i++)
                if (dup2(high[i], 3 + (int) i) < 0)
                        return -errno;
        if (close_range((unsigned) first, ~0U, 0) < 0) {
                /* close_range() needs Linux 5.9; fall back to closing one by one */
                for (int fd = first; fd < 65536; fd++)
                        (void) close(fd);
        }
        return 0;
}

static int child_stdin_null(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fd != STDIN_FILENO) {
                if (dup2(fd, STDIN_FILENO) < 0)
                        return -errno;
                close(fd);
        } else if (fcntl(fd, F_SETFD, 0) < 0)
                return -errno;
        return 0;
}

static bool same_file(int a, int b) {
        struct stat sa, sb;
        return fstat(a, &sa) >= 0 && fstat(b, &sb) >= 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* sd_journal_stream_fd(), with the unit in the header (it sends none).
 * The header is journald's stdout protocol: identifier, unit, priority,
 * level prefix, forward to syslog, to kmsg, to the console.
 *
 * Journald looks a stream's writer up (cgroup, hence unit; comm, exe, uid)
 * lazily, at the first line it reads, and keeps that for about a second.
 * Read after the worker is gone, the look-up fails: the last words of a
 * worker that exits at once would miss from `journalctl -u` (seen: a
 * quarter of them). Journald then falls back to the unit in the header,
 * which it takes from a root peer only: so the child connects before it
 * switches credentials, and for a root child that is enough (as for
 * PID 1's service streams), while the look-up happens after exec, with the
 * worker's own comm, exe and uid.
 *
 * A child that is not root (the manager dropped to user=) cannot name the
 * unit. It makes journald look it up now instead, with an empty line
 * (which makes no entry), at the cost of sockherd's comm, exe and command
 * line on the worker's lines of about its first second. Journald reads a
 * stream once per wake-up and handles what it read before it reads again,
 * so once a second empty line, sent after the first was read, has been
 * read too (nothing left in the send queue), the look-up is done. The
 * child waits for that for 100 ms at most. */
#define JOURNAL_READ_WAIT_USEC 100000
#define JOURNAL_READ_POLL_USEC 200

/* Write all of buf; 0 or a negative errno. */
static int child_write_all(int fd, const char *buf, size_t n) {
        for (size_t done = 0; done < n;) {
                ssize_t w = write(fd, buf + done, n - done);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                done += (size_t) w;
        }
        return 0;
}

/* Until the peer has read everything sent, or *budget_usec runs out. */
static void child_wait_read(int fd, long *budget_usec) {
        for (; *budget_usec > 0; *budget_usec -= JOURNAL_READ_POLL_USEC) {
                int queued;
                if (ioctl(fd, SIOCOUTQ, &queued) < 0 || queued == 0)
                        return;
                (void) usleep(JOURNAL_READ_POLL_USEC);
        }
}

static int child_journal_stream(const char *identifier, const char *unit) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/stdout" };
        char header[512];
        int n = snprintf(header, sizeof(header), "%s\n%s\n%d\n1\n0\n0\n0\n", identifier, unit ?: "", LOG_INFO);
        if (n < 0 || (size_t) n >= sizeof(header))
                return -ENAMETOOLONG;

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (connect(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path))) < 0 ||
            shutdown(fd, SHUT_RD) < 0)
                r = -errno;
        if (r >= 0)
                r = child_write_all(fd, header, (size_t) n);
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        if (geteuid() != 0) {
                long budget_usec = JOURNAL_READ_WAIT_USEC;
                if (child_write_all(fd, "\n", 1) >= 0)
                        child_wait_read(fd, &budget_usec);
                if (budget_usec > 0 && child_write_all(fd, "\n", 1) >= 0)
                        child_wait_read(fd, &budget_usec);
        }
        return fd;
}

/* See spawn_plan_use_journal_stream(). Never a reason to fail the worker.
 * Connecting may wait for a busy journald: in the child, not the manager. */
static void child_connect_journal(const SpawnPlan *p, const char *cmd) {
        char *value = p->envp[p->journal_stream_index] + strlen("JOURNAL_STREAM=");
        size_t room = strlen(value) + 1;
        bool stdout_too = same_file(STDOUT_FILENO, STDERR_FILENO);
        struct stat st;

        /* the listening sockets end at 3 + n_fds; all above is closed */
        int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3 + (int) p->n_fds);
        int fd = child_journal_stream(p->journal_identifier, p->journal_unit);
        if (fd < 0)
                child_warn("%s: cannot connect to the journal: %s; the worker writes to sockherd's stream\n",
                           cmd, strerror(-fd));
        else {
                if ((stdout_too && dup2(fd, STDOUT_FILENO) < 0) || dup2(fd, STDERR_FILENO) < 0)
                        child_warn("%s: cannot use the journal stream: %s\n", cmd, strerror(errno));
                (void) close(fd);
                if (saved >= 0)
                        child_error_fd = saved;
        }
        if (fstat(STDERR_FILENO, &st) >= 0)
                snprintf(value, room, "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        else
                value[0] = '\0';
}

static _Noreturn void child_run(const SpawnPlan *p) {
        const char *cmd = p->argv[0];
        int r;

        child_error_to_journal = p->journal_identifier != NULL;
        if ((r = child_reset_signals()) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: cannot reset signals: %s\n", cmd, strerror(-r));
        if (setsid() < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: setsid: %s\n", cmd, strerror(errno));
        if ((r = child_stdin_null()) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: cannot open /dev/null: %s\n", cmd, strerror(-r));
        if ((r = child_place_fds(p->fds, p->n_fds)) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: cannot pass listening sockets: %s\n", cmd, strerror(-r));

        /* before the credential switch: journald takes the unit's name
         * from a root peer only */
        if (p->journal_identifier)
                child_connect_journal(p, cmd);

        /* Only root switches; a manager that is not root (it was started as
         * the workers' user, or dropped to it) already has their credentials,
         * config_validate() made sure of that. */
        if (geteuid() == 0) {
                if (p->set_groups && setgroups(p->n_groups, p->groups) < 0)
                        child_fail(SPAWN_EXIT_SETUP, "%s: cannot set supplementary groups: %s\n", cmd, strerror(errno));
                if (p->gid != (gid_t) -1 && setresgid(p->gid, p->gid, p->gid) < 0)
                        child_fail(SPAWN_EXIT_SETUP, "%s: cannot switch to gid %u: %s\n", cmd, (unsigned) p->gid, strerror(errno));
                if (p->uid != (uid_t) -1 && setresuid(p->uid, p->uid, p->uid) < 0)
                        child_fail(SPAWN_EXIT_SETUP, "%s: cannot switch to uid %u: %s\n", cmd, (unsigned) p->uid, strerror(errno));
        }

        if (p->working_directory && chdir(p->working_directory) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: cannot change to %s: %s\n", cmd, p->working_directory, strerror(errno));

        /* after the credential switch, which would clear it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: PR_SET_PDEATHSIG: %s\n", cmd, strerror(errno));
        if (getppid() != p->manager_pid)
                _exit(SPAWN_EXIT_SETUP); /* the manager died before we got here */

        child_write_pid(p->envp[p->listen_pid_index] + strlen("LISTEN_PID="), getpid());
        if (p->watchdog_pid_index != SIZE_MAX)
                child_write_pid(p->envp[p->watchdog_pid_index] + strlen("WATCHDOG_PID="), getpid());

        if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(SPAWN_EXIT_SETUP, "%s: PR_SET_NO_NEW_PRIVS: %s\n", cmd, strerror(errno));

        execvpe(cmd, p->argv, p->envp);
        int e = errno;
        /* ENOENT for a file that is there: its #! interpreter is missing */
        bool interpreter = e == ENOENT && strchr(cmd, '/') && access(cmd, F_OK) == 0;
        child_fail(SPAWN_EXIT_EXEC, "cannot execute '%s': %s%s\n", cmd, strerror(e),
                   interpreter ? " (the file exists: its #! interpreter is missing)" : "");
}

int spawn_plan_exec(const SpawnPlan *p, pid_t *ret_pid) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_run(p);
        *ret_pid = pid;
        return 0;
}
