/* The manager: events in, decisions from worker.c/backoff.c, effects out.
 *
 *   signals (TERM/INT) ----> shutdown: stop every worker, wait, exit
 *   child exit ------------> log, respawn in the same slot after backoff
 *   notify datagram -------> READY/STATUS/STOPPING for the sending worker
 *   worker timers ---------> alive/ready timeout/stop timeout
 *
 * It is the only module that forks, kills and logs about workers. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "sockherd/log.h"
#include "sockherd/manager.h"
#include "sockherd/notify.h"
#include "sockherd/parse.h"
#include "sockherd/pool.h"
#include "sockherd/spawn.h"
#include "sockherd/util.h"
#include "sockherd/worker.h"

extern char **environ;

typedef struct RateLimit {
        uint64_t window_start;
        unsigned count;
        unsigned suppressed;
} RateLimit;

struct Manager {
        sd_event *event;
        Config *config;
        ListenSet sockets;
        Pool pool;
        uint64_t generation;

        int notify_fd;
        char *notify_address;
        sd_event_source *notify_source;

        bool stopping;
        bool announced_ready;
        char last_status[256];
        RateLimit notify_drops;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* At most 10 messages per 5 s for things outsiders can trigger at will. */
static bool ratelimit_allow(RateLimit *rl) {
        uint64_t now = now_usec();
        if (now - rl->window_start > 5 * USEC_PER_SEC) {
                if (rl->suppressed > 0)
                        log_warning("%u similar messages suppressed", rl->suppressed);
                rl->window_start = now;
                rl->count = 0;
                rl->suppressed = 0;
        }
        if (rl->count++ < 10)
                return true;
        rl->suppressed++;
        return false;
}

#define log_worker(prio, w, fmt, ...) \
        log_emit(prio, (int) (w)->slot, (w)->pid, (w)->generation, "slot %u pid %d: " fmt, \
                 (w)->slot, (int) (w)->pid, ##__VA_ARGS__)

static void manager_update_status(Manager *m) {
        unsigned ready = pool_count(&m->pool, WORKER_READY);
        char status[256];

        if (m->stopping)
                snprintf(status, sizeof(status), "stopping, %u workers left", pool_alive(&m->pool));
        else
                snprintf(status, sizeof(status), "%u/%u workers ready, generation %" PRIu64,
                         ready, m->pool.n_slots, m->generation);

        if (!m->stopping && !m->announced_ready && ready == m->pool.n_slots) {
                m->announced_ready = true;
                log_info("pool ready: %u workers serving %zu socket%s", ready, m->sockets.n,
                         m->sockets.n == 1 ? "" : "s");
                (void) sd_notifyf(0, "READY=1\nSTATUS=%s", status);
                snprintf(m->last_status, sizeof(m->last_status), "%s", status);
                return;
        }
        if (strcmp(status, m->last_status) != 0) {
                snprintf(m->last_status, sizeof(m->last_status), "%s", status);
                (void) sd_notifyf(0, "STATUS=%s", status);
        }
}

static void worker_free(Worker *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->child_source);
        sd_event_source_disable_unref(w->timer_source);
        free(w);
}

static void worker_apply(Manager *m, Worker *w, WorkerEvent event);

static int on_worker_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Worker *w = userdata;
        worker_apply(w->userdata, w, WORKER_EVENT_TIMER);
        return 0;
}

static void worker_set_timer(Manager *m, Worker *w, WorkerTimer timer) {
        if (timer == WORKER_TIMER_NONE) {
                if (w->timer_source)
                        (void) sd_event_source_set_enabled(w->timer_source, SD_EVENT_OFF);
                return;
        }

        uint64_t usec = worker_timer_usec(timer, m->config);
        if (usec == USEC_INFINITY)
                return;

        int r;
        if (w->timer_source) {
                r = sd_event_source_set_time_relative(w->timer_source, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(w->timer_source, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &w->timer_source, CLOCK_MONOTONIC, usec,
                                               10 * USEC_PER_MSEC, on_worker_timer, w);
        if (r < 0)
                log_error_errno(r, "slot %u pid %d: cannot arm timer: %m", w->slot, (int) w->pid);
}

static void worker_kill_group(Worker *w, int sig) {
        /* workers run in their own session; the group takes grandchildren too */
        if (kill(-w->pid, sig) < 0)
                (void) kill(w->pid, sig);
}

static void worker_apply(Manager *m, Worker *w, WorkerEvent event) {
        WorkerState old = w->state;
        WorkerStep step = worker_step(old, m->config->ready_mode, event);
        char buf[32];

        w->state = step.state;

        if (step.actions & WORKER_ACTION_SET_TIMER)
                worker_set_timer(m, w, step.timer);
        if (step.actions & WORKER_ACTION_READY_FAILED)
                log_worker(LOG_WARNING, w, "not ready within ready-timeout=%s (no READY=1); stopping it",
                           format_duration(m->config->ready_timeout_usec, buf));
        if (step.actions & WORKER_ACTION_SEND_STOP) {
                if (kill(w->pid, m->config->stop_signal) < 0 && errno != ESRCH)
                        log_worker(LOG_ERR, w, "cannot send %s: %m", strsignal(m->config->stop_signal));
        }
        if (step.actions & WORKER_ACTION_KILL) {
                log_worker(LOG_WARNING, w, "still running after stop-timeout=%s; killing it",
                           format_duration(m->config->stop_timeout_usec, buf));
                worker_kill_group(w, SIGKILL);
        }
        if (step.actions & WORKER_ACTION_BECAME_READY)
                log_worker(LOG_INFO, w, "ready");

        if (old != w->state)
                manager_update_status(m);
}

static int manager_spawn(Manager *m, unsigned slot);

static int on_restart_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        /* which slot: the one whose restart source fired */
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                if (m->pool.slots[i].restart_source == s) {
                        m->pool.slots[i].restart_source = sd_event_source_disable_unref(s);
                        (void) manager_spawn(m, i);
                        break;
                }
        return 0;
}

static void manager_schedule_restart(Manager *m, unsigned slot, uint64_t ran_usec) {
        Slot *sl = &m->pool.slots[slot];
        BackoffPolicy policy = {
                .initial_usec = m->config->restart_delay_usec,
                .max_usec = m->config->restart_delay_max_usec,
                .stable_usec = m->config->restart_stable_usec,
        };
        uint64_t delay = backoff_next(&sl->backoff, &policy, ran_usec);
        char buf[32];

        sl->restarts++;
        log_emit(LOG_INFO, (int) slot, 0, m->generation, "slot %u: starting a new worker in %s",
                 slot, format_duration(delay, buf));

        sd_event_source_disable_unref(sl->restart_source);
        sl->restart_source = NULL;
        int r = sd_event_add_time_relative(m->event, &sl->restart_source, CLOCK_MONOTONIC, delay,
                                           USEC_PER_MSEC, on_restart_timer, m);
        if (r < 0)
                log_error_errno(r, "slot %u: cannot arm the restart timer: %m", slot);
}

static void describe_exit(const siginfo_t *si, char *buf, size_t size) {
        if (si->si_code == CLD_EXITED)
                snprintf(buf, size, "exited with status %d", si->si_status);
        else
                snprintf(buf, size, "killed by signal %s%s", sigabbrev_np(si->si_status) ?: "?",
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
}

static int on_child_exit(sd_event_source *s _unused_, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;
        Manager *m = w->userdata;
        unsigned slot = w->slot;
        uint64_t ran = now_usec() - w->started_usec;
        char how[96];

        describe_exit(si, how, sizeof(how));
        bool expected = w->state == WORKER_STOPPING;
        int prio = expected ? LOG_INFO : LOG_WARNING;
        if (si->si_code == CLD_EXITED && si->si_status == SPAWN_EXIT_EXEC)
                prio = LOG_ERR;
        log_worker(prio, w, "%s%s", how, expected ? "" : " unexpectedly");

        /* anything the worker left in its process group goes with it; the
         * worker is not reaped yet, so its pid (the group id) cannot have
         * been reused */
        (void) kill(-w->pid, SIGKILL);

        worker_apply(m, w, WORKER_EVENT_EXITED);
        m->pool.slots[slot].worker = NULL;
        worker_free(w);

        manager_update_status(m);

        if (m->stopping) {
                if (pool_alive(&m->pool) == 0) {
                        log_info("all workers stopped");
                        sd_event_exit(m->event, 0);
                }
                return 0;
        }
        manager_schedule_restart(m, slot, ran);
        return 0;
}

static int manager_spawn(Manager *m, unsigned slot) {
        SpawnPlan plan;
        pid_t pid;
        int r;

        r = spawn_plan_build(m->config, &m->sockets, slot, m->generation, m->notify_address, environ, &plan);
        if (r < 0)
                return log_error_errno(r, "slot %u: cannot prepare a worker: %m", slot);
        r = spawn_plan_exec(&plan, &pid);
        spawn_plan_done(&plan);
        if (r < 0) {
                log_error_errno(r, "slot %u: cannot fork a worker: %m", slot);
                manager_schedule_restart(m, slot, 0);
                return r;
        }

        Worker *w = calloc(1, sizeof(Worker));
        if (!w) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                manager_schedule_restart(m, slot, 0);
                return log_error_errno(-ENOMEM, "slot %u: out of memory", slot);
        }
        *w = (Worker) {
                .pid = pid,
                .slot = slot,
                .generation = m->generation,
                .state = WORKER_STARTING,
                .started_usec = now_usec(),
                .userdata = m,
        };

        r = sd_event_add_child(m->event, &w->child_source, pid, WEXITED, on_child_exit, w);
        if (r < 0) {
                log_error_errno(r, "slot %u: cannot watch worker %d: %m", slot, (int) pid);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                free(w);
                manager_schedule_restart(m, slot, 0);
                return r;
        }
        m->pool.slots[slot].worker = w;
        log_worker(LOG_INFO, w, "started (generation %" PRIu64 ")", m->generation);

        worker_apply(m, w, WORKER_EVENT_STARTED);
        return 0;
}

static bool is_worker_pid(pid_t pid, void *userdata) {
        return pool_find(userdata, pid) != NULL;
}

static void manager_handle_notify(Manager *m, pid_t sender, const NotifyMessage *msg) {
        pid_t pid = notify_find_worker(sender, is_worker_pid, &m->pool);
        Worker *w = pid > 0 ? pool_find(&m->pool, pid) : NULL;

        if (!w) {
                if (ratelimit_allow(&m->notify_drops))
                        log_warning("ignoring notify message from pid %d: not a worker of this pool", (int) sender);
                return;
        }
        if (msg->has_status)
                snprintf(w->status, sizeof(w->status), "%s", msg->status);
        if (msg->ready)
                worker_apply(m, w, WORKER_EVENT_NOTIFY_READY);
        if (msg->stopping)
                worker_apply(m, w, WORKER_EVENT_NOTIFY_STOPPING);
}

static int on_notify(sd_event_source *s _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        Manager *m = userdata;

        /* a bounded batch per wake-up, so a flood cannot starve other sources */
        for (unsigned i = 0; i < 64; i++) {
                NotifyMessage msg;
                pid_t sender = 0;
                const char *reason = NULL;

                int r = notify_receive(fd, &sender, &msg, &reason);
                if (r == NOTIFY_NOTHING)
                        break;
                if (r < 0) {
                        log_error_errno(r, "cannot read the notify socket: %m");
                        break; /* never return an error: it would disable the source */
                }
                if (r == NOTIFY_DROPPED) {
                        if (ratelimit_allow(&m->notify_drops))
                                log_warning("dropped a notify message from pid %d: %s", (int) sender, reason);
                        continue;
                }
                manager_handle_notify(m, sender, &msg);
        }
        return 0;
}

static void manager_begin_stop(Manager *m, const char *why) {
        m->stopping = true;
        log_info("%s: stopping %u workers (stop-timeout=%s)", why, pool_alive(&m->pool),
                 format_duration(m->config->stop_timeout_usec, (char[32]) {}));
        (void) sd_notify(0, "STOPPING=1");

        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                sl->restart_source = sd_event_source_disable_unref(sl->restart_source);
                if (sl->worker)
                        worker_apply(m, sl->worker, WORKER_EVENT_STOP);
        }
        manager_update_status(m);
        if (pool_alive(&m->pool) == 0)
                sd_event_exit(m->event, 0);
}

static int on_stop_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (!m->stopping) {
                manager_begin_stop(m, sigabbrev_np((int) si->ssi_signo) ? : "signal");
                return 0;
        }
        /* a second TERM/INT while draining: do not wait any longer */
        log_warning("SIG%s again: killing the remaining workers now", sigabbrev_np((int) si->ssi_signo));
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                if (m->pool.slots[i].worker)
                        worker_kill_group(m->pool.slots[i].worker, SIGKILL);
        return 0;
}

static int on_reload_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si _unused_, void *userdata _unused_) {
        log_warning("SIGHUP received, but rolling reload is not implemented yet; ignoring it");
        return 0;
}

int manager_new(Config *config, ListenSet *sockets, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->notify_fd = -1;
        m->generation = 1;

        r = pool_init(&m->pool, config->workers);
        if (r < 0)
                goto fail;
        r = sd_event_new(&m->event);
        if (r < 0)
                goto fail;

        r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_reload_signal, m);
        if (r < 0)
                goto fail;
        (void) sd_event_set_watchdog(m->event, true);

        r = notify_socket_open(config->name, &m->notify_address);
        if (r < 0)
                goto fail;
        m->notify_fd = r;
        r = sd_event_add_io(m->event, &m->notify_source, m->notify_fd, EPOLLIN, on_notify, m);
        if (r < 0)
                goto fail;
        /* before child exits, so a worker's last message is read before its death */
        r = sd_event_source_set_priority(m->notify_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                goto fail;

        m->config = config;
        m->sockets = *sockets;
        *sockets = (ListenSet) {};
        *ret = m;
        return 0;

fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                sd_event_source_disable_unref(sl->restart_source);
                worker_free(sl->worker);
        }
        pool_done(&m->pool);
        sd_event_source_disable_unref(m->notify_source);
        safe_close(m->notify_fd);
        free(m->notify_address);
        sd_event_unref(m->event);
        listen_set_clear(&m->sockets);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        log_info("starting %u workers: %s (ready=%s)", m->pool.n_slots, m->config->command[0],
                 ready_mode_to_string(m->config->ready_mode));
        manager_update_status(m);

        for (unsigned i = 0; i < m->pool.n_slots; i++)
                (void) manager_spawn(m, i);

        return sd_event_loop(m->event);
}
