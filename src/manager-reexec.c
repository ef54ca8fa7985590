/* Re-exec: replace the manager's program in place (an upgrade), keeping
 * its pid, its sockets and its workers. The state goes into a memfd that
 * survives exec; the sockets, the control socket and the worker-notify
 * socket survive with CLOEXEC cleared for the moment of the exec; workers
 * stay our children. The new image finds all of it through the hidden
 * --deserialize=FD option and goes on supervising. If exec fails, the old
 * image keeps running and says why.
 *
 * An exec that succeeds into a program that then cannot take over (a
 * half-finished upgrade, a binary for another machine, one that reads
 * another state format) would orphan every worker, so first the program on
 * disk must prove it can: manager_reexec_probe() runs it with
 * --state-version and with our arguments plus --check-config. The state
 * memfd is sealed before the exec: nobody who got hold of it can change
 * what the new image reads. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "manager-reexec.h"
#include "manager-view.h"
#include "sockherd/log.h"
#include "sockherd/systemd-notify.h"
#include "sockherd/util.h"

struct ManagerReexec {
        Manager *manager;
        char *exe_path;         /* our binary on disk */
        char **argv;            /* our command line (borrowed from main) */
        sd_event_source *deferred; /* a requested re-exec, run from the loop */
};

static int set_cloexec(int fd, bool on) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return -errno;
        flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int manager_reexec_check(ManagerReexec *x, ErrorText *why) {
        _cleanup_config_ Config *config = NULL;
        ErrorText err = {};
        ManagerView v;

        manager_view(x->manager, &v);
        if (v.stopping || v.draining)
                return error_set(why, -ESHUTDOWN, "the manager is stopping");
        if (strcmp(v.reload.state, "idle") != 0)
                return error_set(why, -EBUSY, "a reload or restart is running; try again when it has ended");
        if (!x->exe_path || access(x->exe_path, X_OK) < 0)
                return error_set(why, -ENOENT, "cannot find our own program (%s)", x->exe_path ?: "?");
        /* the new image reads the config again: it must be valid now (the
         * user and group answers of the running config serve: no NSS
         * look-up inside the loop; the new image makes its own) */
        if (config_source_reload(v.source, online_cpus(), v.config, &config, &err) < 0)
                return error_set(why, -EINVAL, "the configuration does not load: %s", err.message);
        return 0;
}

/* Our command line for the new image, with `option` right after argv[0]
 * (options must come before the command), without the --deserialize that
 * an earlier re-exec put there. The strings are borrowed; NULL when out of
 * memory. */
static char **reexec_argv(ManagerReexec *x, char *option) {
        size_t n = strv_length(x->argv), k = 0;
        char **argv = calloc(n + 2, sizeof(char *));
        if (!argv)
                return NULL;
        argv[k++] = x->argv[0];
        argv[k++] = option;
        for (size_t i = 1; i < n; i++)
                if (!(i == 1 && strncmp(x->argv[i], "--deserialize=", 14) == 0))
                        argv[k++] = x->argv[i];
        argv[k] = NULL;
        return argv;
}

#define PROBE_TIMEOUT_USEC (5 * USEC_PER_SEC)

/* Run exe with argv in its own process group: stdin /dev/null, stdout and
 * stderr into a pipe whose first out_size - 1 bytes land in out. Waits at
 * most PROBE_TIMEOUT_USEC, then kills the group. Synchronous: the event
 * loop waits meanwhile, and since every other source is idle, waitpid() on
 * this pid alone reaps it. *ret_status is the wait status, or -1 after a
 * timeout. Every fd of ours is CLOEXEC, so the child gets none of them. */
static int probe_run(const char *exe, char **argv, int *ret_status, char *out, size_t out_size) {
        _cleanup_close_ int null_fd = -1, read_fd = -1, pidfd = -1;
        int fds[2], status = -1, r;
        size_t len = 0;

        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        read_fd = fds[0];
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(fds[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                (void) setpgid(0, 0);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* above 2 first: dup2() onto itself would keep CLOEXEC */
                int in = fcntl(null_fd, F_DUPFD_CLOEXEC, 3), wr = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
                if (in < 0 || wr < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(wr, STDOUT_FILENO) < 0 ||
                    dup2(wr, STDERR_FILENO) < 0)
                        _exit(126);
                execv(exe, argv);
                dprintf(STDERR_FILENO, "cannot execute: %s\n", strerror(errno));
                _exit(127);
        }
        safe_close(fds[1]);
        (void) setpgid(pid, pid);
        /* Without pidfds (kernels before 5.3, valgrind) the exit is
         * looked for every 10 ms instead (waitid WNOWAIT: not reaped yet). */
        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0 && errno != ENOSYS) {
                r = -errno;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }

        bool exited = false;
        uint64_t deadline = manager_now_usec() + PROBE_TIMEOUT_USEC;
        for (;;) {
                uint64_t now = manager_now_usec();
                /* poll() ignores a negative fd: without a pidfd, p[0] is inert */
                struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = read_fd, .events = POLLIN } };
                if (pidfd < 0 && !exited) {
                        siginfo_t si = {};
                        exited = waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
                }
                /* once it exited, only what is in the pipe already: a
                 * background child of a script may hold it open */
                if (now >= deadline || (exited && read_fd < 0))
                        break;
                int timeout = exited ? 0 : (int) ((deadline - now + 999) / 1000);
                if (pidfd < 0 && !exited && timeout > 10)
                        timeout = 10;
                int n = poll(p, 2, timeout);
                if (n < 0 && errno != EINTR)
                        break;
                if (n == 0 && exited)
                        break;
                if (n == 0 && pidfd < 0)
                        continue; /* look for the exit again */
                if (read_fd >= 0 && p[1].revents) {
                        char buf[512];
                        ssize_t k = read(read_fd, buf, sizeof(buf));
                        if (k <= 0)
                                read_fd = safe_close(read_fd);
                        for (ssize_t i = 0; i < k && len + 1 < out_size; i++)
                                out[len++] = buf[i];
                }
                if (p[0].revents & POLLIN)
                        exited = true;
        }
        if (!exited)
                (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL); /* in case setpgid() lost a race */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        out[len] = '\0';
        *ret_status = exited ? status : -1;
        return 0;
}

/* The first line of a probe's output, printable, for a message. */
static const char *first_line(char *out) {
        out[strcspn(out, "\n")] = '\0';
        for (char *p = out; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        if (strlen(out) > 160)
                strcpy(out + 157, "...");
        return out;
}

/* 0 when the probe exited 0, else -EINVAL with why filled. */
static int probe_verdict(const char *exe, const char *option, int status, char *out, ErrorText *why) {
        if (status == -1)
                error_set(why, -EINVAL, "%s %s did not finish within %llu s", exe, option,
                         (unsigned long long) (PROBE_TIMEOUT_USEC / USEC_PER_SEC));
        else if (WIFSIGNALED(status))
                error_set(why, -EINVAL, "%s %s was killed by SIG%s", exe, option,
                         sigabbrev_np(WTERMSIG(status)) ?: "?");
        else if (WEXITSTATUS(status) != 0)
                error_set(why, -EINVAL, "%s %s failed with exit status %d%s%s", exe,
                         option, WEXITSTATUS(status), *out ? ": " : "", first_line(out));
        else
                return 0;
        return -EINVAL;
}

int manager_reexec_probe(ManagerReexec *x, ErrorText *why) {
        char out[256], *version_argv[] = { x->exe_path, (char *) "--state-version", NULL };
        int status, r;

        /* manager_reexec_check() found x->exe_path */
        r = probe_run(x->exe_path, version_argv, &status, out, sizeof(out));
        if (r < 0)
                return error_set(why, r, "cannot run %s: %s", x->exe_path, strerror(-r));
        r = probe_verdict(x->exe_path, "--state-version", status, out, why);
        if (r < 0)
                return r;
        unsigned version;
        size_t digits = strspn(out, "0123456789");
        if (digits == 0 || digits > 9 || strcmp(out + digits, "\n") != 0 ||
            sscanf(out, "%u", &version) != 1)
                return error_set(why, -EPROTO, "%s --state-version printed '%s', not a state version",
                                x->exe_path, first_line(out));
        if (version != STATE_VERSION)
                return error_set(why, -EPROTO, "%s reads state version %u, this manager writes version %d: "
                                "restart the pool instead", x->exe_path, version, STATE_VERSION);

        _cleanup_free_ char **argv = reexec_argv(x, (char *) "--check-config");
        if (!argv)
                return error_set(why, -ENOMEM, "out of memory");
        r = probe_run(x->exe_path, argv, &status, out, sizeof(out));
        if (r < 0)
                return error_set(why, r, "cannot run %s: %s", x->exe_path, strerror(-r));
        return probe_verdict(x->exe_path, "--check-config", status, out, why);
}

/* Every fd the new image needs, with CLOEXEC set or cleared. */
static void keep_fds(const State *s, int memfd, bool keep) {
        for (size_t i = 0; i < s->n_sockets; i++)
                (void) set_cloexec(s->sockets[i].fd, !keep);
        (void) set_cloexec(s->notify_fd, !keep);
        if (s->control_fd >= 0)
                (void) set_cloexec(s->control_fd, !keep);
        if (s->http_fd >= 0)
                (void) set_cloexec(s->http_fd, !keep);
        for (size_t i = 0; i < s->n_slot_sockets; i++)
                (void) set_cloexec(s->slot_sockets[i].fd, !keep);
        for (size_t i = 0; i < s->n_balancers; i++)
                for (size_t k = 0; k < STATE_BALANCER_FDS; k++)
                        (void) set_cloexec(s->balancers[i].fds[k], !keep);
        for (size_t i = 0; i < s->n_drain_sockets; i++)
                (void) set_cloexec(s->drain_sockets[i].fd, !keep);
        if (memfd >= 0)
                (void) set_cloexec(memfd, !keep);
}

int manager_reexec(ManagerReexec *x) {
        State state = {};
        _cleanup_close_ int memfd = -1;
        char arg[64];
        int r;

        r = manager_state_record(x->manager, &state);
        if (r < 0) {
                state_done(&state);
                return log_error_errno(r, "re-exec: cannot record the state: %m");
        }
        memfd = memfd_create("sockherd-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (memfd < 0) {
                r = -errno;
                state_done(&state);
                return log_error_errno(r, "re-exec: memfd_create: %m");
        }
        int dupfd = dup(memfd);
        FILE *f = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
        if (!f) {
                safe_close(dupfd);
                state_done(&state);
                return log_error_errno(-EIO, "re-exec: cannot write the state");
        }
        r = state_write(&state, f);
        fclose(f);
        if (r < 0 || lseek(memfd, 0, SEEK_SET) < 0) {
                state_done(&state);
                return log_error_errno(r < 0 ? r : -errno, "re-exec: cannot write the state: %m");
        }
        /* no writer, not even us, can change it from here on */
        if (fcntl(memfd, F_ADD_SEALS, STATE_SEALS) < 0) {
                r = -errno;
                state_done(&state);
                return log_error_errno(r, "re-exec: cannot seal the state: %m");
        }

        snprintf(arg, sizeof(arg), "--deserialize=%d", memfd);
        char **argv = reexec_argv(x, arg);
        if (!argv) {
                state_done(&state);
                return log_error_errno(-ENOMEM, "re-exec: out of memory");
        }

        log_info("re-executing %s with %zu workers (pid %d stays)", x->exe_path, state.n_workers, (int) getpid());
        (void) systemd_notify("STATUS=re-executing");
        keep_fds(&state, memfd, true);
        execv(x->exe_path, argv);

        /* still here: the old image goes on */
        r = -errno;
        keep_fds(&state, memfd, false);
        free(argv);
        state_done(&state);
        char status[512];
        manager_format_status(x->manager, status, sizeof(status));
        (void) systemd_notifyf("STATUS=%s", status);
        return log_error_errno(r, "re-exec of %s failed, this image keeps running: %m", x->exe_path);
}

static int on_deferred(sd_event_source *s, void *userdata) {
        ManagerReexec *x = userdata;
        ErrorText why;

        x->deferred = sd_event_source_disable_unref(s);
        if (manager_reexec_check(x, &why) < 0)
                log_warning("not re-executing: %s", why.message);
        else
                (void) manager_reexec(x);
        return 0;
}

int manager_reexec_request(ManagerReexec *x, ErrorText *why) {
        ManagerView v;
        int r = manager_reexec_check(x, why);
        if (r >= 0)
                r = manager_reexec_probe(x, why);
        if (r < 0)
                return r;
        manager_view(x->manager, &v);
        if (!x->deferred && sd_event_add_defer(v.event, &x->deferred, on_deferred, x) < 0)
                return error_set(why, -ENOMEM, "out of memory");
        return 0;
}

ManagerReexec *manager_reexec_new(Manager *m, char **argv) {
        ManagerReexec *x = calloc(1, sizeof(ManagerReexec));
        if (!x)
                return NULL;
        x->manager = m;
        x->argv = argv;
        /* NULL when /proc is not there: manager_reexec_check() refuses then */
        x->exe_path = realpath("/proc/self/exe", NULL);
        return x;
}

ManagerReexec *manager_reexec_free(ManagerReexec *x) {
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->deferred);
        free(x->exe_path);
        free(x);
        return NULL;
}
