/* The manager: events in, decisions from worker.c, txn.c, backoff.c,
 * startup.c and recycle.c,
 * effects out.
 *
 *   signals ---------------> TERM/INT: shutdown; HUP: rolling reload
 *   child exit ------------> respawn in the same slot after backoff, or
 *                            a failed reload (its new worker died)
 *   notify datagram -------> READY/STATUS/STOPPING for the sending worker
 *   worker timers ---------> alive / ready timeout / stop timeout
 *
 * It is the only module that forks, kills and logs about workers, and
 * the only one that sees the Manager's fields: its parts are objects of
 * their own (manager-balance.c is handed the pool and the sockets; the
 * control socket, the HTTP endpoint, the samples, re-exec and systemd's
 * view of the unit see manager-view.h), and a re-exec's record of the pool
 * is pool-state.c's. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "manager-balance.h"
#include "manager-control.h"
#include "manager-http.h"
#include "manager-metrics.h"
#include "manager-reexec.h"
#include "manager-unit.h"
#include "manager-view.h"
#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/manager.h"
#include "sockherd/pool-state.h"
#include "sockherd/state.h"
#include "sockherd/event-util.h"
#include "sockherd/exit-status.h"
#include "sockherd/log.h"
#include "sockherd/notify.h"
#include "sockherd/parse.h"
#include "sockherd/pool.h"
#include "sockherd/control.h"
#include "sockherd/fdstore.h"
#include "sockherd/recycle.h"
#include "sockherd/reuseport.h"
#include "sockherd/txn.h"
#include "sockherd/sample.h"
#include "sockherd/spawn.h"
#include "sockherd/startup.h"
#include "sockherd/subreaper.h"
#include "sockherd/systemd-notify.h"
#include "sockherd/util.h"
#include "sockherd/worker.h"

extern char **environ;

typedef struct RateLimit {
        uint64_t window_start;
        unsigned count;
        unsigned suppressed;
} RateLimit;

/* One rolling replacement in progress: the pure transaction (txn.c) and
 * what carrying it out needs. */
typedef struct ReloadRun {
        Txn txn;
        Config *config;         /* what the new workers run (a reference) */
        uint64_t generation;
        uint64_t covers;        /* control requests up to this number are answered by its end */
        uint64_t serial;        /* tells its events from an earlier run's */
        uint64_t canary_until_usec; /* CLOCK_MONOTONIC; 0 while canary-time is not running */
        sd_event_source *canary_source;
} ReloadRun;

/* An event for the running transaction, queued so that actions carried out
 * (a worker ready as soon as it is forked) never re-enter txn_step(). */
typedef struct ReloadInput {
        uint64_t serial;
        TxnEvent event;
        unsigned slot;
        pid_t pid;
        char why[416];
} ReloadInput;

struct Manager {
        sd_event *event;
        ConfigSource source;
        Config *config;         /* the committed config */
        ListenSet sockets;
        ManagerBalance *balancing; /* the mode, every slot's own sockets, steering (manager-balance.c) */
        Pool pool;
        uint64_t generation;    /* the committed generation */
        uint64_t last_generation; /* the highest one handed out */

        int notify_fd;
        char *notify_address;
        gid_t notify_gid;       /* the group that may reach notify_address's directory */
        sd_event_source *notify_source;

        sd_event_source *watchdog_source; /* pings systemd's watchdog (WatchdogSec=) */

        ReloadRun *reload;
        ReloadQueue reload_queue;
        ReloadInput *reload_inbox;  /* see ReloadInput */
        size_t n_reload_inbox;
        bool reload_dispatching;
        uint64_t reload_serial;
        uint64_t requests;      /* control requests for reloads/restarts so far */
        ManagerDoneHandler done_handler; /* told when transactions end (manager-control.c) */
        void *done_userdata;

        ManagerControl *control;  /* the control socket (manager-control.c), or NULL */
        ManagerHttp *http;        /* http-listen (manager-http.c), or NULL */
        bool draining;          /* a stop was asked for; drain-delay runs before it begins */
        sd_event_source *drain_source;
        uid_t control_uid;      /* may use the control socket besides root: the uid we were started as */
        char reload_error[512]; /* the last reload's failure, "" after a success */

        sd_event_source *recycle_source;  /* checks max-lifetime and max-memory */
        ManagerMetrics *metrics;  /* the samples (manager-metrics.c) */
        unsigned recycle_ticks;

        ManagerReexec *reexec;  /* re-exec (manager-reexec.c) */
        bool restored;          /* started from a re-exec state */

        bool stopping;
        bool announced_ready;
        bool command_ran;       /* some worker is known to have run the command (see
                                 * start_verdict() in startup.c) */
        bool worker_was_ready;  /* some worker of this image was ready once: start-up
                                 * is over (see start_verdict() in startup.c) */
        ManagerUnit *unit;      /* systemd, about our own unit (manager-unit.c); NULL: none */

        char last_status[512];
        RateLimit notify_drops;
        RateLimit signal_drops;   /* signals from senders we do not take orders from */
};


static unsigned manager_workers_wanted(const Manager *m) {
        return m->reload ? m->reload->txn.n_from : m->pool.n_slots;
}

/* New connections go to every slot, except the ones a reload added and has
 * not committed yet. */
static void manager_steer(Manager *m) {
        manager_balance_steer(m->balancing, manager_workers_wanted(m));
}

static void manager_reload_snapshot(const Manager *m, ReloadSnapshot *ret);

uint64_t manager_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* At most 10 messages per 5 s for things outsiders can trigger at will. */
static bool ratelimit_allow(RateLimit *rl) {
        uint64_t now = manager_now_usec();
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

/* ---- systemd's notify socket ---- */

static int on_watchdog_ping(sd_event_source *s, uint64_t usec _unused_, void *userdata _unused_) {
        uint64_t interval;

        (void) systemd_notify("WATCHDOG=1");
        if (sd_watchdog_enabled(false, &interval) > 0)
                (void) sd_event_source_set_time_relative(s, interval / 2);
        return 0;
}

/* WatchdogSec=: ping at half the interval, from the loop (so a hung loop
 * is caught), through the manager's own socket. */
static int watchdog_start(Manager *m) {
        uint64_t interval;
        int r;

        if (sd_watchdog_enabled(false, &interval) <= 0)
                return 0;
        r = sd_event_add_time_relative(m->event, &m->watchdog_source, CLOCK_MONOTONIC, interval / 2,
                                       interval / 16, on_watchdog_ping, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->watchdog_source, SD_EVENT_ON);
        if (r >= 0)
                (void) systemd_notify("WATCHDOG=1");
        return r;
}

void manager_format_status(const Manager *m, char *buf, size_t size) {
        int n;

        if (m->stopping) {
                snprintf(buf, size, "stopping, %u workers left", pool_alive(&m->pool));
                return;
        }
        if (m->draining) {
                snprintf(buf, size, "draining: /health answers 503 for drain-delay=%s, then %u workers stop",
                         format_duration(m->config->drain_delay_usec, (char[32]) {}), pool_alive(&m->pool));
                return;
        }
        n = snprintf(buf, size, "%u/%u workers ready, generation %" PRIu64,
                     pool_ready(&m->pool), manager_workers_wanted(m), m->generation);
        if (n < 0 || (size_t) n >= size)
                return;
        ReloadSnapshot snap;
        manager_reload_snapshot(m, &snap);
        if (m->reload && snap.canaries > 0 && strcmp(snap.state, "canary") == 0)
                snprintf(buf + n, size - (size_t) n, ", reloading to generation %" PRIu64
                         " (canary: %u/%u replaced, %s of canary-time left)",
                         snap.generation, snap.done, snap.total,
                         format_duration(snap.canary_left_usec / USEC_PER_SEC * USEC_PER_SEC, (char[32]) {}));
        else if (m->reload)
                snprintf(buf + n, size - (size_t) n, ", %s generation %" PRIu64 " (%u/%u replaced)",
                         strcmp(snap.state, "rolling-back") == 0 ? "rolling back to" :
                         strcmp(snap.state, "restarting") == 0 ? "restarting workers of" : "reloading to",
                         snap.generation, snap.done, snap.total);
        else if (m->reload_error[0])
                snprintf(buf + n, size - (size_t) n, "; last reload failed: %.300s", m->reload_error);
}

static void manager_update_status(Manager *m) {
        char status[512];

        manager_format_status(m, status, sizeof(status));
        if (!m->stopping && !m->draining && !m->announced_ready && !m->reload && pool_ready(&m->pool) == m->pool.n_slots) {
                m->announced_ready = true;
                log_info("pool ready: %u workers serving %zu socket%s", m->pool.n_slots, m->sockets.n,
                         m->sockets.n == 1 ? "" : "s");
                systemd_notifyf("READY=1\nSTATUS=%s", status);
        } else if (strcmp(status, m->last_status) != 0)
                systemd_notifyf("STATUS=%s", status);
        snprintf(m->last_status, sizeof(m->last_status), "%s", status);
}

static void close_fds_array(int *fds, size_t n) {
        for (size_t i = 0; fds && i < n; i++)
                safe_close(fds[i]);
}

static Worker *manager_worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->own_fds) {
                const Manager *m = w->userdata;
                close_fds_array(w->own_fds, m ? m->sockets.n : 0);
                free(w->own_fds);
        }
        sd_event_source_disable_unref(w->child_source);
        sd_event_source_disable_unref(w->timer_source);
        sd_event_source_disable_unref(w->watchdog_source);
        sd_event_source_disable_unref(w->drain_source);
        worker_close_owned_fds(w);
        config_free(w->config);
        free(w);
        return NULL;
}

static void manager_worker_apply(Manager *m, Worker *w, WorkerEvent event);

static int on_worker_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Worker *w = userdata;
        manager_worker_apply(w->userdata, w, WORKER_EVENT_TIMER);
        return 0;
}

static void manager_worker_set_timer(Manager *m, Worker *w, WorkerTimer timer) {
        if (timer == WORKER_TIMER_NONE) {
                if (w->timer_source)
                        (void) sd_event_source_set_enabled(w->timer_source, SD_EVENT_OFF);
                return;
        }

        uint64_t usec = worker_timer_usec(timer, w->config);
        if (usec == USEC_INFINITY)
                return;

        int r = event_reset_time_relative(m->event, &w->timer_source, usec, 10 * USEC_PER_MSEC, on_worker_timer, w);
        if (r < 0)
                log_error_errno(r, "slot %u pid %d: cannot arm timer: %m", w->slot, (int) w->pid);
}

static int on_worker_watchdog(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Worker *w = userdata;
        char buf[32];

        log_worker(LOG_WARNING, w, "watchdog timeout: no WATCHDOG=1 within %s; aborting it (SIGABRT)",
                   format_duration(w->config->watchdog_usec, buf));
        manager_worker_apply(w->userdata, w, WORKER_EVENT_WATCHDOG);
        return 0;
}

/* (Re)start the worker's watchdog countdown; a no-op without watchdog=. */
static void manager_worker_watchdog_arm(Manager *m, Worker *w) {
        uint64_t usec = w->config->watchdog_usec;

        if (usec == 0)
                return;
        int r = event_reset_time_relative(m->event, &w->watchdog_source, usec, 10 * USEC_PER_MSEC,
                                          on_worker_watchdog, w);
        if (r < 0)
                log_error_errno(r, "slot %u pid %d: cannot arm the watchdog: %m", w->slot, (int) w->pid);
}

static void manager_worker_kill_group(Worker *w, int sig) {
        /* workers run in their own session; the group takes grandchildren too */
        if (kill(-w->pid, sig) < 0)
                (void) kill(w->pid, sig);
}

/* Ask a worker to go (if it is not going already). */
static void manager_worker_stop(Manager *m, Worker *w) {
        if (w && w->state != WORKER_STOPPING && w->state != WORKER_EXITED)
                manager_worker_apply(m, w, WORKER_EVENT_STOP);
}

#define DRAIN_CHECK_USEC (20 * USEC_PER_MSEC)
#define DRAIN_MAX_USEC (2 * USEC_PER_SEC)

static int on_drain_check(sd_event_source *s, uint64_t usec _unused_, void *userdata);

/* A retiring worker with sockets to drain drains them first (on_drain_check);
 * any other is asked to go now. */
static void manager_worker_drain_or_stop(Manager *m, Worker *w) {
        if (w->n_owned_fds > 0 && w->state == WORKER_READY && !m->stopping) {
                w->drain_deadline_usec = manager_now_usec() + DRAIN_MAX_USEC + w->config->quiet_period_usec;
                if (sd_event_add_time_relative(m->event, &w->drain_source, CLOCK_MONOTONIC, DRAIN_CHECK_USEC,
                                               USEC_PER_MSEC, on_drain_check, w) >= 0)
                        return;
        }
        manager_worker_stop(m, w);
}

static void manager_worker_retire_stop(Manager *m, Worker *w) {
        manager_worker_drain_or_stop(m, w);
}

/* A worker whose slot went away, or who was replaced on sockets of its
 * own, keeps accepting from its old sockets (no new connection lands there
 * any more) until their queues are empty and have stayed empty for
 * quiet-period, time to read what it accepted last; only then is it told
 * to stop, so nothing queued is reset at close and nothing accepted is
 * dropped unread by a server that closes idle connections on SIGTERM. */
static int on_drain_check(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        Worker *w = userdata;
        unsigned queued = 0;
        uint64_t now = manager_now_usec();

        for (size_t i = 0; i < w->n_owned_fds; i++) {
                unsigned q = 0, backlog;
                if (listen_queue(w->owned_fds[i], &q, &backlog) >= 0)
                        queued += q;
        }
        if (queued > 0)
                w->drain_quiet_since_usec = 0;
        else if (w->drain_quiet_since_usec == 0)
                w->drain_quiet_since_usec = now;
        bool quiet = queued == 0 && now - w->drain_quiet_since_usec >= w->config->quiet_period_usec;
        if (quiet || now >= w->drain_deadline_usec || w->state != WORKER_READY) {
                if (queued > 0)
                        log_worker(LOG_WARNING, w, "%u connections still queued on its socket after %s; stopping it anyway",
                                   queued, format_duration(DRAIN_MAX_USEC + w->config->quiet_period_usec, (char[32]) {}));
                w->drain_source = sd_event_source_disable_unref(s);
                manager_worker_stop(w->userdata, w);
                return 0;
        }
        (void) sd_event_source_set_time_relative(s, DRAIN_CHECK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* Take w out of its slot onto the retiring list and ask it to go. */
static void manager_retire(Manager *m, Worker *w) {
        if (pool_retire(&m->pool, w) < 0) {
                /* cannot track it: make sure it is gone rather than lost */
                log_worker(LOG_ERR, w, "out of memory; killing it");
                manager_worker_kill_group(w, SIGKILL);
                (void) waitpid(w->pid, NULL, 0);
                manager_worker_free(w);
                return;
        }
        manager_worker_drain_or_stop(m, w);
}

/* Add slots up to n, each ready for a worker of config/generation. */
static int manager_grow(Manager *m, unsigned n, Config *config, uint64_t generation) {
        unsigned old = m->pool.n_slots;
        int r = pool_resize(&m->pool, n);
        if (r < 0)
                return r;
        for (unsigned i = old; i < n; i++) {
                m->pool.slots[i].config = config_ref(config);
                m->pool.slots[i].generation = generation;
                r = manager_balance_slot_open(m->balancing, i, m->config->backlog);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                for (unsigned i = old; i < n; i++)
                        manager_balance_slot_release(m->balancing, i, NULL);
                (void) pool_resize(&m->pool, old);
                return r;
        }
        manager_steer(m);
        return 0;
}

/* Remove the slots from n up: their workers drain what is queued and go.
 * No new connection lands on their sockets: new connections go only to
 * the slots a transaction started with until it ends (manager_steer()),
 * and its end, which a shrink always reaches (a scale, a committed reload)
 * or is part of (a rollback), steers to what is left (run_finish()). */
static void manager_shrink(Manager *m, unsigned n) {
        unsigned old = m->pool.n_slots;
        if (n >= old)
                return;
        Worker **going = calloc(old - n, sizeof(Worker *));
        unsigned k = 0;

        for (unsigned i = n; i < old; i++) {
                Slot *sl = &m->pool.slots[i];
                sl->restart_source = sd_event_source_disable_unref(sl->restart_source);
                Worker *w = TAKE_PTR(sl->worker);
                manager_balance_slot_release(m->balancing, i, w);
                if (w && going)
                        going[k++] = w;
                else if (w)
                        manager_retire(m, w);
        }
        /* the pool is its new size before a going worker's state changes
         * (which steers, with least-connections) */
        if (pool_resize(&m->pool, n) < 0)
                log_error("cannot shrink the pool to %u slots", n);
        for (unsigned i = 0; i < k; i++)
                manager_retire(m, going[i]);
        free(going);
}

static void run_feed(Manager *m, TxnEvent event, unsigned slot, pid_t pid, const char *why);
static void manager_replace_onto_original(Manager *m);

static bool is_incoming(Manager *m, Worker *w) {
        return w->slot < m->pool.n_slots && m->pool.slots[w->slot].incoming == w;
}

static void manager_worker_apply(Manager *m, Worker *w, WorkerEvent event) {
        WorkerState old = w->state;
        WorkerStep step = worker_step(old, w->config->ready_mode, event);
        char buf[32], why[128];

        w->state = step.state;

        if (step.actions & WORKER_ACTION_SET_TIMER)
                manager_worker_set_timer(m, w, step.timer);
        if (step.actions & WORKER_ACTION_SEND_STOP) {
                if (kill(w->pid, w->config->stop_signal) < 0 && errno != ESRCH)
                        log_worker(LOG_ERR, w, "cannot send %s: %m", strsignal(w->config->stop_signal));
        }
        if (step.actions & WORKER_ACTION_SEND_ABORT)
                (void) kill(w->pid, SIGABRT);
        if (step.actions & WORKER_ACTION_KILL) {
                log_worker(LOG_WARNING, w, "still running after stop-timeout=%s; killing it",
                           format_duration(w->config->stop_timeout_usec, buf));
                manager_worker_kill_group(w, SIGKILL);
        }
        if (step.actions & WORKER_ACTION_READY_FAILED) {
                snprintf(why, sizeof(why), "not ready within ready-timeout=%s (no READY=1)",
                         format_duration(w->config->ready_timeout_usec, buf));
                log_worker(LOG_WARNING, w, "%s; stopping it", why);
                if (is_incoming(m, w))
                        run_feed(m, TXN_EVENT_FAILED, w->slot, w->pid, why);
        }
        if (step.actions & WORKER_ACTION_BECAME_READY) {
                /* ready=exec counts a worker ready when it is forked: no proof it ran */
                if (event != WORKER_EVENT_STARTED)
                        m->command_ran = true;
                m->worker_was_ready = true;
                log_worker(LOG_INFO, w, "ready");
                manager_balance_check_backlogs(m->balancing);
                manager_worker_watchdog_arm(m, w);
                if (is_incoming(m, w))
                        run_feed(m, TXN_EVENT_READY, w->slot, w->pid, "");
        }

        if (w->state != WORKER_READY && w->watchdog_source)
                (void) sd_event_source_set_enabled(w->watchdog_source, SD_EVENT_OFF);

        if (old != w->state) {
                /* least-connections: only ready workers take connections
                 * (reuseport's steering depends on the slot count only) */
                if (manager_balance_mode(m->balancing) == BALANCE_LEAST_CONNECTIONS)
                        manager_steer(m);
                manager_update_status(m);
        }
        if (m->announced_ready && !m->reload && !m->stopping && manager_balance_take_orphaned(m->balancing))
                manager_replace_onto_original(m);
}

static int manager_spawn(Manager *m, unsigned slot, Config *config, uint64_t generation, bool incoming);
static void manager_read_notify(Manager *m, unsigned max, uint64_t budget_usec);
static void manager_notify_follow_group(Manager *m, const Config *c);

static int on_restart_timer(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        /* which slot: the one whose restart source fired */
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                if (sl->restart_source == s) {
                        sl->restart_source = sd_event_source_disable_unref(s);
                        (void) manager_spawn(m, i, sl->config, sl->generation, false);
                        break;
                }
        }
        return 0;
}

static void manager_schedule_restart(Manager *m, unsigned slot, uint64_t ran_usec) {
        Slot *sl = &m->pool.slots[slot];
        BackoffPolicy policy = {
                .initial_usec = sl->config->restart_delay_usec,
                .max_usec = sl->config->restart_delay_max_usec,
                .stable_usec = sl->config->restart_stable_usec,
        };
        uint64_t delay = backoff_next(&sl->backoff, &policy, ran_usec);
        char buf[32];

        sl->restarts++;
        log_emit(LOG_INFO, (int) slot, 0, sl->generation, "slot %u: starting a new worker in %s",
                 slot, format_duration(delay, buf));
        /* once per streak: the backoff reached BACKOFF_CRASH_LOOP_FAILURES exits in a row */
        if (sl->backoff.failures == BACKOFF_CRASH_LOOP_FAILURES)
                log_emit_id(SOCKHERD_MESSAGE_CRASH_LOOP, LOG_ERR, (int) slot, 0, sl->generation,
                            "slot %u is in a crash loop: %u exits in a row without a stable run of %s; "
                            "retrying every %s at most", slot, BACKOFF_CRASH_LOOP_FAILURES,
                            format_duration(sl->config->restart_stable_usec, (char[32]) {}),
                            format_duration(sl->config->restart_delay_max_usec, (char[32]) {}));

        sl->restart_source = sd_event_source_disable_unref(sl->restart_source);
        int r = sd_event_add_time_relative(m->event, &sl->restart_source, CLOCK_MONOTONIC, delay,
                                           USEC_PER_MSEC, on_restart_timer, m);
        if (r < 0)
                log_error_errno(r, "slot %u: cannot arm the restart timer: %m", slot);
}

/* Status 127 or 126 from a worker: the spawn child gave up before the
 * command ran (spawn.h); the child wrote the reason to stderr. */
static bool exited_before_run(const siginfo_t *si) {
        return si->si_code == CLD_EXITED && (si->si_status == SPAWN_EXIT_EXEC || si->si_status == SPAWN_EXIT_SETUP);
}

static void describe_exit(const siginfo_t *si, char *buf, size_t size) {
        if (si->si_code == CLD_EXITED)
                snprintf(buf, size, "exited with status %d", si->si_status);
        else
                snprintf(buf, size, "killed by signal %s%s", sigabbrev_np(si->si_status) ?: "?",
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
}

/* What 127 and 126 mean, naming the command; "" for other exits. */
static void describe_exit_cause(const siginfo_t *si, const Config *c, char *buf, size_t size) {
        if (si->si_code == CLD_EXITED && si->si_status == SPAWN_EXIT_EXEC)
                snprintf(buf, size, "; '%.200s' could not be executed", c->command[0]);
        else if (si->si_code == CLD_EXITED && si->si_status == SPAWN_EXIT_SETUP)
                snprintf(buf, size, "; the working directory, user or group for '%.200s' could not be set up",
                         c->command[0]);
        else
                buf[0] = '\0';
}

static void manager_check_stopped(Manager *m) {
        if (m->stopping && pool_alive(&m->pool) == 0) {
                log_info("all workers stopped");
                sd_event_exit(m->event, 0);
        }
}

/* Start-up's give-up rules are startup.c's; these are the facts. */
static StartVerdict manager_start_verdict(Manager *m) {
        StartFacts f = {
                .attempts = m->config->start_attempts,
                .restored = m->restored,
                .transaction = m->reload != NULL,
                .stopping = m->stopping,
                .alive = pool_alive(&m->pool),
                .command_ran = m->command_ran,
                .worker_was_ready = m->worker_was_ready,
        };
        return start_verdict(&f, m->pool.slots, m->pool.n_slots);
}

static void manager_give_up_start(Manager *m, const Config *c, const siginfo_t *si, const char *how, int exit_code) {
        char msg[768];

        if (si->si_code == CLD_EXITED && si->si_status == SPAWN_EXIT_EXEC)
                snprintf(msg, sizeof(msg), "cannot start any worker: '%.200s' could not be executed (exit status %d, "
                         "%u times in each of the %u slots; the reason is in the line \"cannot execute\" above)",
                         c->command[0], SPAWN_EXIT_EXEC, c->start_attempts, m->pool.n_slots);
        else if (si->si_code == CLD_EXITED && si->si_status == SPAWN_EXIT_SETUP)
                snprintf(msg, sizeof(msg), "cannot start any worker: the working directory, user or group for '%.200s' "
                         "could not be set up (exit status %d, %u times in each of the %u slots; the reason is in "
                         "the line above)", c->command[0], SPAWN_EXIT_SETUP, c->start_attempts, m->pool.n_slots);
        else {
                char output[160], command[256] = "";
                size_t len = 0;
                for (char **a = c->command; *a && len < sizeof(command) - 1; a++)
                        len += (size_t) snprintf(command + len, sizeof(command) - len, "%s%s",
                                                 a == c->command ? "" : " ", *a);
                if (log_stderr_is_journal())
                        snprintf(output, sizeof(output), "the journal (journalctl -t %.100s)", c->log_identifier);
                else
                        snprintf(output, sizeof(output), "sockherd's standard error");
                snprintf(msg, sizeof(msg), "cannot start any worker: '%s' never got ready: the worker of each "
                         "of the %u slots exited %u times (start-attempts), the last one %s; their output went "
                         "to %s", command, m->pool.n_slots, c->start_attempts, how, output);
        }
        log_error("%s; exiting with status %d", msg, exit_code);
        systemd_notifyf("STATUS=%s", msg);

        m->stopping = true;
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                m->pool.slots[i].restart_source = sd_event_source_disable_unref(m->pool.slots[i].restart_source);
        sd_event_exit(m->event, exit_code);
}

/* Pending notify messages are read before a worker's exit is handled (up
 * to 1024, or 20 ms under a flood): its last READY=1 or STATUS= was sent
 * before it died, and the notify source may be waiting behind others or
 * its rate limit. */
#define NOTIFY_BEFORE_EXIT 1024
#define NOTIFY_BEFORE_EXIT_USEC (20 * USEC_PER_MSEC)

static int on_child_exit(sd_event_source *s _unused_, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;
        Manager *m = w->userdata;

        manager_read_notify(m, NOTIFY_BEFORE_EXIT, NOTIFY_BEFORE_EXIT_USEC);

        unsigned slot = w->slot;
        uint64_t ran = manager_now_usec() - w->started_usec;
        bool before_run = exited_before_run(si);
        char how[96], cause[320], why[416];

        describe_exit(si, how, sizeof(how));
        describe_exit_cause(si, w->config, cause, sizeof(cause));
        bool expected = w->state == WORKER_STOPPING;
        int prio = expected ? LOG_INFO : LOG_WARNING;
        if (before_run)
                prio = LOG_ERR;
        log_emit_id(expected ? NULL : SOCKHERD_MESSAGE_WORKER_FAILED, prio, (int) w->slot, w->pid, w->generation,
                    "slot %u pid %d: %s%s%s", w->slot, (int) w->pid, how, expected ? "" : " unexpectedly", cause);
        if (!before_run)
                m->command_ran = true;

        /* anything the worker left in its process group goes with it; the
         * worker is not reaped yet, so its pid (the group id) cannot have
         * been reused */
        (void) kill(-w->pid, SIGKILL);
        manager_worker_apply(m, w, WORKER_EVENT_EXITED);

        if (pool_unretire(&m->pool, w)) {
                manager_worker_free(w);
        } else if (is_incoming(m, w)) {
                /* a reload's new worker died before it was ready */
                snprintf(why, sizeof(why), "%s%s", how, cause);
                run_feed(m, TXN_EVENT_FAILED, slot, w->pid, why);
                if (pool_unretire(&m->pool, w))
                        manager_worker_free(w);
                else if (slot < m->pool.n_slots && m->pool.slots[slot].incoming == w) {
                        /* no transaction took it (the manager is stopping) */
                        m->pool.slots[slot].incoming = NULL;
                        manager_worker_free(w);
                }
        } else if (slot < m->pool.n_slots && m->pool.slots[slot].worker == w) {
                Slot *sl = &m->pool.slots[slot];
                snprintf(sl->last_exit, sizeof(sl->last_exit), "%s%s", how, expected ? "" : " unexpectedly");
                sl->exits_before_run = before_run ? sl->exits_before_run + 1 : 0;
                if (!m->worker_was_ready)
                        sl->exits_before_ready++;
                pid_t w_pid = w->pid;
                sl->worker = manager_worker_free(w);
                StartVerdict verdict = manager_start_verdict(m);
                if (verdict != START_GO_ON) {
                        /* 2: restarting cannot help (the unit's RestartPreventExitStatus=2) */
                        manager_give_up_start(m, m->config, si, how,
                                              verdict == START_CANNOT_RUN ? EXIT_USAGE : EXIT_RUNTIME);
                        return 0;
                }
                /* a canary that exits fails its reload; a slot the
                 * transaction is about to fill is not respawned */
                snprintf(why, sizeof(why), "%s%s", how, cause);
                run_feed(m, TXN_EVENT_EXITED, slot, w_pid, why);
                if (!m->stopping && slot < m->pool.n_slots && !m->pool.slots[slot].worker &&
                    !m->pool.slots[slot].incoming && !m->pool.slots[slot].restart_source &&
                    !(m->reload && txn_owns_slot(&m->reload->txn, slot)))
                        manager_schedule_restart(m, slot, ran);
        } else {
                log_worker(LOG_ERR, w, "exited but was not tracked; this is a bug");
                manager_worker_free(w);
        }

        manager_update_status(m);
        manager_check_stopped(m);
        return 0;
}

/* A worker process we did not fork in this image (a re-exec): watch it and
 * put it where the state says. */
static Worker *manager_adopt_worker(Manager *m, pid_t pid, unsigned slot, uint64_t generation, WorkerState state,
                             uint64_t started_usec, bool retiring) {
        Worker *w = calloc(1, sizeof(Worker));
        if (!w)
                return NULL;
        *w = (Worker) {
                .pid = pid, .slot = slot, .generation = generation, .config = config_ref(m->config),
                .state = state, .started_usec = started_usec, .userdata = m,
        };
        int r = sd_event_add_child(m->event, &w->child_source, pid, WEXITED, on_child_exit, w);
        if (r >= 0 && retiring)
                r = pool_retire(&m->pool, w);
        if (r < 0) {
                log_error_errno(r, "slot %u: cannot watch worker %d again: %m", slot, (int) pid);
                manager_worker_free(w);
                return NULL;
        }
        if (!retiring)
                m->pool.slots[slot].worker = w;

        /* timers start over: a fair deadline for what it was waiting for */
        switch (state) {
        case WORKER_STARTING:
                manager_worker_set_timer(m, w, w->config->ready_mode == READY_ALIVE ? WORKER_TIMER_ALIVE : WORKER_TIMER_READY_TIMEOUT);
                break;
        case WORKER_READY:
                manager_worker_watchdog_arm(m, w);
                break;
        case WORKER_STOPPING:
                manager_worker_set_timer(m, w, WORKER_TIMER_STOP_TIMEOUT);
                break;
        case WORKER_EXITED:
                break;
        }
        return w;
}

static const char *limit_to_string(rlim_t v, char buf[static 24]) {
        if (v == RLIM_INFINITY)
                return "unlimited";
        snprintf(buf, 24, "%llu", (unsigned long long) v);
        return buf;
}

/* fork() failed with EAGAIN: name the limit that is the likely cause. */
static void describe_process_limit(char *buf, size_t size) {
        struct rlimit rl;
        char n[24];
        if (getrlimit(RLIMIT_NPROC, &rl) < 0)
                return;
        snprintf(buf, size, " (the process limit is reached: RLIMIT_NPROC is %s for uid %u, "
                 "or the system's pid or thread limit)", limit_to_string(rl.rlim_cur, n), (unsigned) getuid());
}

/* Out of file descriptors: say how many the manager may have. */
static void describe_fd_limit(char *buf, size_t size) {
        struct rlimit rl;
        char n[24];
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        snprintf(buf, size, " (the manager's RLIMIT_NOFILE is %s)", limit_to_string(rl.rlim_cur, n));
}

static int manager_spawn(Manager *m, unsigned slot, Config *config, uint64_t generation, bool incoming) {
        Slot *sl = &m->pool.slots[slot];
        SpawnPlan plan;
        pid_t pid;
        int r;

        _cleanup_free_ int *own_fds = NULL;
        manager_notify_follow_group(m, config);
        /* least-connections: a replacement starts on sockets of its own, closed
         * to new connections until it takes over, while the worker it replaces
         * serves the slot's; a slot with no worker (it crashed, a canary
         * went) hands its own sockets, and what is queued on them, straight
         * to the new worker */
        if (incoming && sl->worker) {
                r = manager_balance_incoming_open(m->balancing, slot, m->config->backlog, &own_fds);
                if (r < 0)
                        return r;
        }
        r = spawn_plan_build(config, &m->sockets, own_fds ?: sl->fds, slot, generation, m->notify_address, environ,
                             &plan);
        if (r < 0)
                log_error_errno(r, "slot %u: cannot start a worker: %m", slot);
        else {
                /* under journald each worker writes to a stream of its own */
                if (log_stderr_is_journal())
                        r = spawn_plan_use_journal_stream(&plan, config->log_identifier, log_journal_unit());
                if (r >= 0)
                        r = spawn_plan_exec(&plan, &pid);
                spawn_plan_done(&plan);
                if (r < 0) {
                        char hint[160] = "";
                        if (r == -EAGAIN)
                                describe_process_limit(hint, sizeof(hint));
                        log_error_errno(r, "slot %u: cannot fork a worker: %m%s", slot, hint);
                }
        }
        if (r < 0) {
                close_fds_array(own_fds, m->sockets.n);
                if (!incoming)
                        manager_schedule_restart(m, slot, 0);
                return r;
        }

        Worker *w = calloc(1, sizeof(Worker));
        if (w) {
                *w = (Worker) {
                        .pid = pid,
                        .slot = slot,
                        .generation = generation,
                        .config = config_ref(config),
                        .state = WORKER_STARTING,
                        .started_usec = manager_now_usec(),
                        .own_fds = TAKE_PTR(own_fds),
                        .userdata = m,
                };
                if (config->max_lifetime_usec > 0) {
                        /* up to 10% earlier, at random, so a pool started at once does
                         * not recycle at once */
                        uint64_t jitter = config->max_lifetime_usec / 10;
                        w->recycle_at_usec = w->started_usec + config->max_lifetime_usec -
                                             (jitter ? (uint64_t) random() % jitter : 0);
                }
                r = sd_event_add_child(m->event, &w->child_source, pid, WEXITED, on_child_exit, w);
        } else
                r = -ENOMEM;
        if (r < 0) {
                char hint[96] = "";
                if (r == -EMFILE)
                        describe_fd_limit(hint, sizeof(hint));
                log_error_errno(r, "slot %u: cannot watch worker %d: %m%s; stopping it", slot, (int) pid, hint);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                close_fds_array(own_fds, m->sockets.n);
                manager_worker_free(w);
                if (!incoming)
                        manager_schedule_restart(m, slot, 0);
                return r;
        }

        if (incoming)
                sl->incoming = w;
        else
                sl->worker = w;
        log_worker(LOG_INFO, w, "started (generation %" PRIu64 ")", generation);

        manager_worker_apply(m, w, WORKER_EVENT_STARTED);
        return 0;
}

static void manager_update_recycling(Manager *m);

/* ---- rolling reload: carrying out the transaction (txn.c decides) ---- */

static int request_restart(Manager *m, const bool *targets, uint64_t *ret_request);
static void run_reload(Manager *m);
static void run_feed(Manager *m, TxnEvent event, unsigned slot, pid_t pid, const char *why);

static void run_free(ReloadRun *run) {
        if (!run)
                return;
        sd_event_source_disable_unref(run->canary_source);
        txn_done(&run->txn);
        config_free(run->config);
        free(run);
}

static void manager_reload_snapshot(const Manager *m, ReloadSnapshot *ret) {
        const ReloadRun *run = m->reload;

        *ret = (ReloadSnapshot) { .state = "idle", .generation = m->generation };
        if (!run)
                return;
        const Txn *t = &run->txn;
        txn_progress(t, &ret->done, &ret->total);
        ret->generation = run->generation;
        if (t->kind == TXN_RESTART)
                ret->state = "restarting";
        else if (t->kind == TXN_SCALE)
                ret->state = "scaling";
        else if (t->phase == TXN_PHASE_ROLLING_BACK) {
                ret->state = "rolling-back";
                ret->generation = m->generation;
        } else if (t->phase == TXN_PHASE_CANARY || t->phase == TXN_PHASE_CANARY_WATCH)
                ret->state = "canary";
        else
                ret->state = "reloading";
        for (unsigned i = 0; i < t->n_slots; i++)
                ret->canaries += txn_is_canary(t, i);
        uint64_t now = manager_now_usec();
        if (t->phase == TXN_PHASE_CANARY_WATCH && run->canary_until_usec > now)
                ret->canary_left_usec = run->canary_until_usec - now;
}

static void manager_answer_waiters(Manager *m, uint64_t covers, bool ok) {
        if (m->done_handler)
                m->done_handler(covers, ok, m->reload_error, m->done_userdata);
}

/* A transaction ended: systemd and the waiting clients hear how; a reload
 * asked for meanwhile starts. */
static void run_finish(Manager *m, bool ok) {
        char status[512];
        uint64_t covers = m->reload ? m->reload->covers : m->requests;
        TxnKind kind = m->reload ? m->reload->txn.kind : TXN_RELOAD;

        run_free(m->reload);
        m->reload = NULL;
        manager_steer(m); /* slots a reload added take connections from now on */
        /* a slot the transaction kept empty (its canary exited, then the
         * rollback failed) gets its ordinary respawn */
        for (unsigned i = 0; i < m->pool.n_slots && !m->stopping; i++) {
                Slot *sl = &m->pool.slots[i];
                if (!sl->worker && !sl->incoming && !sl->restart_source)
                        manager_schedule_restart(m, i, 0);
        }
        if (ok && kind == TXN_RELOAD)
                m->reload_error[0] = '\0';
        if (kind == TXN_SCALE)
                /* systemd heard no RELOADING=1 for it: no READY=1 to end it
                 * (one before the pool was first ready would end start-up) */
                manager_update_status(m);
        else {
                manager_format_status(m, status, sizeof(status));
                snprintf(m->last_status, sizeof(m->last_status), "%s", status);
                systemd_notifyf("READY=1\nSTATUS=%s", status);
        }
        /* after systemd heard it: `systemctl reload` returns when they are answered */
        manager_answer_waiters(m, covers, ok);

        if (reload_queue_end(&m->reload_queue) && !m->stopping) {
                log_info("running the reload that was requested during the last one");
                run_reload(m);
        }
}

static void run_fail(Manager *m, const char *fmt, ...) _printf_(2, 3);
static void run_fail(Manager *m, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->reload_error, sizeof(m->reload_error), fmt, ap);
        va_end(ap);
        log_emit_id(SOCKHERD_MESSAGE_RELOAD_FAILED, LOG_ERR, -1, 0, 0, "reload failed: %s", m->reload_error);
}

/* Say why the transaction failed, in the words of the event that failed it. */
static void run_describe_failure(Manager *m, const TxnAction *a, const ReloadInput *in) {
        ReloadRun *run = m->reload;
        char who[64], buf[32];

        if (in->pid > 0)
                snprintf(who, sizeof(who), "slot %u pid %d", a->slot, (int) in->pid);
        else
                snprintf(who, sizeof(who), "slot %u", a->slot);
        if (run->txn.kind == TXN_RESTART)
                run_fail(m, "restart: %s %s; the old worker keeps serving", who, in->why);
        else if (a->reason == TXN_FAILURE_ROLLBACK)
                run_fail(m, "%s; and the rollback failed too: %s %s", m->reload_error, who, in->why);
        else if (a->reason == TXN_FAILURE_CANARY)
                run_fail(m, "generation %" PRIu64 ": canary %s %s within canary-time=%s; "
                            "the canary slots roll back, the other workers were not touched",
                            run->generation, who, in->why, format_duration(run->config->canary_time_usec, buf));
        else
                run_fail(m, "generation %" PRIu64 ": %s %s", run->generation, who, in->why);
}

/* The slot's starting worker serves; the one it replaces drains and goes. */
static void run_switch(Manager *m, unsigned slot) {
        Slot *sl = &m->pool.slots[slot];
        Worker *w = sl->incoming, *old = sl->worker;

        if (!w)
                return;
        sl->worker = TAKE_PTR(sl->incoming);
        /* least-connections: new connections go to its own sockets from now
         * on; the old worker drains the slot's previous ones, then stops */
        if (manager_balance_slot_take_own(m->balancing, slot, w, old))
                manager_steer(m);
        config_free(sl->config);
        sl->config = config_ref(w->config);
        sl->generation = w->generation;
        sl->backoff = (Backoff) {};
        sl->restart_source = sd_event_source_disable_unref(sl->restart_source);
        if (old)
                manager_retire(m, old);
}

static void run_commit(Manager *m) {
        ReloadRun *run = m->reload;

        config_free(m->config);
        m->config = config_ref(run->config);
        m->generation = run->generation;
        manager_update_recycling(m);
        manager_metrics_update(m);
        manager_unit_check_stop_timeout(m->unit);
        log_emit_id(SOCKHERD_MESSAGE_RELOAD_DONE, LOG_INFO, -1, 0, 0,
                    "reload complete: generation %" PRIu64 " serves on %u workers", m->generation, m->pool.n_slots);
}

static void run_end(Manager *m) {
        ReloadRun *run = m->reload;
        unsigned done, total;

        txn_progress(&run->txn, &done, &total);
        switch (run->txn.result) {
        case TXN_RESULT_COMMITTED:
                if (run->txn.kind == TXN_RESTART)
                        log_info("restart complete: %u worker%s replaced", done, done == 1 ? "" : "s");
                run_finish(m, true);
                return;
        case TXN_RESULT_ROLLED_BACK:
                log_warning("rollback complete: generation %" PRIu64 " serves again on %u workers",
                            m->generation, m->pool.n_slots);
                break;
        case TXN_RESULT_FAILED:
                if (run->txn.kind == TXN_RELOAD)
                        log_warning("reload aborted; generation %" PRIu64 " keeps serving", m->generation);
                break;
        default:
                break;
        }
        run_finish(m, false);
}

static int on_canary_over(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        if (m->reload)
                log_info("canary: %s passed with every canary up; replacing the rest",
                         format_duration(m->reload->config->canary_time_usec, (char[32]) {}));
        run_feed(m, TXN_EVENT_CANARY_OVER, 0, 0, "");
        return 0;
}

static void run_arm_canary(Manager *m) {
        ReloadRun *run = m->reload;
        uint64_t t = run->config->canary_time_usec;
        char buf[32];

        run->canary_until_usec = manager_now_usec() + t;
        log_info("canary: %u slot%s serve generation %" PRIu64 "; the rest waits canary-time=%s",
                 run->txn.canary_end, run->txn.canary_end == 1 ? "" : "s", run->generation, format_duration(t, buf));
        int r = event_reset_time_relative(m->event, &run->canary_source, t, 10 * USEC_PER_MSEC, on_canary_over, m);
        if (r < 0) {
                log_error_errno(r, "cannot arm canary-time: %m; going on without it");
                run_feed(m, TXN_EVENT_CANARY_OVER, 0, 0, "");
        }
}

/* Carry out one action of the running transaction. */
static void run_act(Manager *m, const TxnAction *a, const ReloadInput *in) {
        ReloadRun *run = m->reload;
        Slot *sl = a->slot < m->pool.n_slots ? &m->pool.slots[a->slot] : NULL;

        switch (a->type) {
        case TXN_ACTION_FAIL:
                run_describe_failure(m, a, in);
                break;
        case TXN_ACTION_START:
        case TXN_ACTION_START_OLD: {
                bool old = a->type == TXN_ACTION_START_OLD;
                if (sl && manager_spawn(m, a->slot, old ? m->config : run->config,
                                        old ? m->generation : run->generation, true) >= 0)
                        break;
                /* the failure is an event like any other, after this step */
                run_feed(m, TXN_EVENT_FAILED, a->slot, 0, "cannot start a new worker");
                break;
        }
        case TXN_ACTION_SPAWN:
                /* a failure schedules the slot's respawn, as at start */
                if (sl)
                        (void) manager_spawn(m, a->slot, run->config, run->generation, false);
                break;
        case TXN_ACTION_SWITCH:
                if (sl)
                        run_switch(m, a->slot);
                break;
        case TXN_ACTION_ABANDON:
                if (sl && sl->incoming)
                        manager_retire(m, TAKE_PTR(sl->incoming));
                break;
        case TXN_ACTION_SHRINK:
                manager_shrink(m, a->slot);
                break;
        case TXN_ACTION_CANARY_TIMER:
                run_arm_canary(m);
                break;
        case TXN_ACTION_ROLLBACK:
                log_warning("reload aborted; rolling %u switched slot%s back to generation %" PRIu64,
                            a->slot, a->slot == 1 ? "" : "s", m->generation);
                break;
        case TXN_ACTION_COMMIT:
                run_commit(m);
                break;
        case TXN_ACTION_FINISH:
                run_end(m);
                break;
        default:
                break;
        }
}

/* Queue an event for the running transaction and, unless we are carrying
 * out one already, apply the queue in order. */
static void run_feed(Manager *m, TxnEvent event, unsigned slot, pid_t pid, const char *why) {
        if (!m->reload)
                return;
        ReloadInput in = { .serial = m->reload->serial, .event = event, .slot = slot, .pid = pid };
        snprintf(in.why, sizeof(in.why), "%s", why ?: "");
        if (ARRAY_APPEND(m->reload_inbox, m->n_reload_inbox, in) < 0) {
                log_error("out of memory: a reload event (%s, slot %u) is lost", txn_event_to_string(event), slot);
                return;
        }
        if (m->reload_dispatching)
                return;

        m->reload_dispatching = true;
        for (size_t i = 0; i < m->n_reload_inbox; i++) {
                ReloadInput cur = m->reload_inbox[i];
                ReloadRun *run = m->reload;
                if (!run || cur.serial != run->serial)
                        continue; /* for a transaction that has ended */
                size_t n = txn_step(&run->txn, cur.event, cur.slot);
                /* the actions are the transaction's until its next step; the
                 * last one (FINISH) may free it, so keep a copy */
                _cleanup_free_ TxnAction *actions = n ? malloc(n * sizeof(TxnAction)) : NULL;
                if (n && !actions) {
                        log_error("out of memory carrying out a reload step");
                        continue;
                }
                if (n)
                        memcpy(actions, run->txn.actions, n * sizeof(TxnAction));
                for (size_t k = 0; k < n && m->reload == run; k++)
                        run_act(m, &actions[k], &cur);
                manager_update_status(m);
        }
        m->n_reload_inbox = 0;
        m->reload_dispatching = false;
}

static int run_new(Manager *m, TxnKind kind, Config *config, uint64_t generation, const bool *targets,
                          unsigned n_to, unsigned batch, unsigned canary) {
        ReloadRun *run = calloc(1, sizeof(ReloadRun));
        if (!run)
                return -ENOMEM;
        run->config = config_ref(config);
        run->generation = generation;
        run->covers = m->requests;
        run->serial = ++m->reload_serial;
        int r = txn_init(&run->txn, kind, targets, m->pool.n_slots, n_to, batch, canary);
        if (r < 0) {
                run_free(run);
                return r;
        }
        m->reload = run;
        return 0;
}

static void run_reload(Manager *m) {
        _cleanup_config_ Config *config = NULL;
        ErrorText err = {};
        _cleanup_free_ bool *targets = NULL;
        int r;

        systemd_notifyf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading", manager_now_usec());
        log_info("reloading: reading %s", m->source.file ?: "the command line");

        r = config_source_reload(&m->source, online_cpus(), m->config, &config, &err);
        if (r < 0) {
                run_fail(m, "%s; generation %" PRIu64 " keeps serving", err.message, m->generation);
                run_finish(m, false);
                return;
        }
        const char *blocker = config_reload_blocker(m->config, config, m->sockets.passed_in);
        if (blocker) {
                run_fail(m, "'%s' changed, which needs a restart; generation %" PRIu64 " keeps serving",
                            blocker, m->generation);
                run_finish(m, false);
                return;
        }
        /* config_validate() refuses groups we are not in; dropping one
         * would pass it, but without root the workers would keep it */
        if (geteuid() != 0 && config_credentials_differ(m->config, config)) {
                run_fail(m, "user, group or supplementary-groups changed: switching the workers' credentials "
                            "needs root, and this manager runs as uid %u; restart instead; generation %" PRIu64
                            " keeps serving", (unsigned) geteuid(), m->generation);
                run_finish(m, false);
                return;
        }

        unsigned n_from = m->pool.n_slots, n_to = config->workers;
        unsigned n = n_from > n_to ? n_from : n_to;
        targets = calloc(n, sizeof(bool));
        if (!targets) {
                run_fail(m, "out of memory");
                run_finish(m, false);
                return;
        }
        for (unsigned i = 0; i < n_to; i++)
                targets[i] = true;

        unsigned batch = reload_batch_resolve(config->reload_batch, config->reload_batch_percent, n_to);
        r = run_new(m, TXN_RELOAD, config, m->last_generation + 1, targets, n_to, batch, config->canary);
        if (r >= 0) {
                /* new slots respawn with the new config once they have a worker */
                r = manager_grow(m, n, config, m->last_generation + 1);
                if (r < 0) {
                        run_free(TAKE_PTR(m->reload));
                        run_fail(m, "cannot add %u slots: %s", n - n_from, strerror(-r));
                        run_finish(m, false);
                        return;
                }
        }
        if (r < 0) {
                run_fail(m, "out of memory");
                run_finish(m, false);
                return;
        }
        m->last_generation++;
        if (m->reload->txn.canary_end > 0)
                log_info("reloading: generation %" PRIu64 " -> %" PRIu64 ", %u -> %u workers, %u at a time, "
                         "canary=%u first", m->generation, m->reload->generation, n_from, n_to, batch,
                         config->canary < n_to ? config->canary : n_to);
        else
                log_info("reloading: generation %" PRIu64 " -> %" PRIu64 ", %u -> %u workers, %u at a time",
                         m->generation, m->reload->generation, n_from, n_to, batch);
        run_feed(m, TXN_EVENT_BEGIN, 0, 0, "");
}

static void manager_replace_onto_original(Manager *m) {
        _cleanup_free_ bool *targets = calloc(m->pool.n_slots, sizeof(bool));
        if (!targets)
                return;
        targets[0] = true;
        log_info("slot 0 served on a socket of its own before the restart; replacing its worker onto the listening "
                 "socket itself, so that nothing waits there unserved");
        uint64_t request;
        int r = request_restart(m, targets, &request);
        if (r < 0)
                log_warning_errno(r, "cannot replace slot 0's worker: %m");
}

static uint64_t request_reload(Manager *m, const char *why) {
        uint64_t request = ++m->requests;

        if (m->stopping || m->draining)
                return request;
        if (reload_queue_request(&m->reload_queue) == RELOAD_REQUEST_QUEUED) {
                log_info("%s: a reload is running; the new one follows when it ends", why);
                return request;
        }
        log_emit_id(SOCKHERD_MESSAGE_RELOAD_STARTED, LOG_INFO, -1, 0, 0, "%s: starting a rolling reload", why);
        run_reload(m);
        return request;
}

static int request_restart(Manager *m, const bool *targets, uint64_t *ret_request) {
        unsigned n = m->pool.n_slots, count = 0;

        if (m->stopping || m->draining)
                return -ESHUTDOWN;
        /* a restart holds the reload queue, so a reload asked for meanwhile waits for it */
        if (m->reload || txn_admit(&m->reload_queue, TXN_RESTART) != TXN_ADMIT_START)
                return -EBUSY;
        for (unsigned i = 0; i < n; i++)
                count += targets[i];
        *ret_request = ++m->requests;
        int r = run_new(m, TXN_RESTART, m->config, m->generation, targets, n,
                        reload_batch_resolve(m->config->reload_batch, m->config->reload_batch_percent, n), 0);
        if (r < 0) {
                (void) reload_queue_end(&m->reload_queue);
                return r;
        }
        log_info("restarting %u worker%s, new before old", count, count == 1 ? "" : "s");
        systemd_notifyf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=restarting workers", manager_now_usec());
        run_feed(m, TXN_EVENT_BEGIN, 0, 0, "");
        return 0;
}

/* A transaction like the others (txn.c: TXN_SCALE), which ends in the step
 * that begins it: new slots get their workers, the highest slots go (their
 * workers drain and exit). */
static int request_scale(Manager *m, unsigned n) {
        unsigned old = m->pool.n_slots;

        if (m->stopping || m->draining)
                return -ESHUTDOWN;
        if (m->reload)
                return -EBUSY;
        if (n < 1 || n > CONFIG_WORKERS_MAX)
                return -ERANGE;
        if (n == old)
                return 0;
        if (txn_admit(&m->reload_queue, TXN_SCALE) != TXN_ADMIT_START)
                return -EBUSY;
        _cleanup_free_ bool *targets = calloc(n > old ? n : old, sizeof(bool));
        int r = targets ? 0 : -ENOMEM;
        for (unsigned i = old; targets && i < n; i++)
                targets[i] = true;
        if (r >= 0)
                r = run_new(m, TXN_SCALE, m->config, m->generation, targets, n, 1, 0);
        if (r >= 0 && n > old) {
                r = manager_grow(m, n, m->config, m->generation);
                if (r < 0)
                        run_free(TAKE_PTR(m->reload));
        }
        if (r < 0) {
                (void) reload_queue_end(&m->reload_queue);
                return r;
        }
        log_info("scaled from %u to %u workers", old, n);
        run_feed(m, TXN_EVENT_BEGIN, 0, 0, "");
        return 0;
}

int manager_request(Manager *m, const ManagerRequest *req, ManagerRequestResult *res) {
        int r;

        *res = (ManagerRequestResult) {};
        if (m->stopping || m->draining)
                return error_set(&res->error, -ESHUTDOWN, "the manager is stopping");
        switch (req->type) {
        case MANAGER_REQUEST_RELOAD:
                res->ticket = request_reload(m, req->who ?: "request");
                /* an invalid config ends at once: nothing to wait for */
                res->running = m->reload != NULL || m->reload_queue.running;
                if (!res->running)
                        error_set(&res->error, 0, "%s", m->reload_error);
                return 0;
        case MANAGER_REQUEST_RESTART:
                r = request_restart(m, req->slots, &res->ticket);
                if (r == -EBUSY)
                        return error_set(&res->error, r, "a reload or restart is running; try again when it has ended");
                if (r < 0)
                        return error_set(&res->error, r, "cannot restart");
                res->running = m->reload != NULL;
                return 0;
        case MANAGER_REQUEST_SCALE:
                r = request_scale(m, req->workers);
                if (r == -EBUSY)
                        return error_set(&res->error, r, "a reload or restart is running; scale when it has ended");
                if (r < 0)
                        return error_set(&res->error, r, "cannot scale: %s", strerror(-r));
                return 0;
        case MANAGER_REQUEST_REEXEC:
                return manager_reexec_request(m->reexec, &res->error);
        }
        return error_set(&res->error, -EINVAL, "unknown request");
}

void manager_set_done_handler(Manager *m, ManagerDoneHandler handler, void *userdata) {
        m->done_handler = handler;
        m->done_userdata = userdata;
}

void manager_view(const Manager *m, ManagerView *ret) {
        *ret = (ManagerView) {
                .event = m->event,
                .source = &m->source,
                .config = m->config,
                .pool = &m->pool,
                .sockets = &m->sockets,
                .generation = m->generation,
                .workers_wanted = manager_workers_wanted(m),
                .stopping = m->stopping,
                .draining = m->draining,
                .control_uid = m->control_uid,
                .balance = manager_balance_mode(m->balancing),
                .balance_reason = manager_balance_reason(m->balancing),
                .balancing = m->balancing,
                .reload_error = m->reload_error,
                .metrics = m->metrics,
        };
        manager_reload_snapshot(m, &ret->reload);
}

/* ---- recycling ---- */

#define RECYCLE_CHECK_USEC USEC_PER_SEC
#define RECYCLE_MEMORY_EVERY 5  /* memory is sampled every 5th check */

/* The worker recycle.c picks: past its max-lifetime, or (sampled every
 * RECYCLE_MEMORY_EVERY checks, in one pass over /proc) above max-memory. */
static Worker *recycle_candidate(Manager *m, char *why, size_t why_size) {
        uint64_t now = manager_now_usec();
        unsigned n = m->pool.n_slots;
        bool sample_memory = m->recycle_ticks % RECYCLE_MEMORY_EVERY == 0;
        char a[32], b[32];

        _cleanup_free_ RecycleCandidate *c = calloc(n ? n : 1, sizeof(RecycleCandidate));
        _cleanup_free_ SampleWorker *s = calloc(n ? n : 1, sizeof(SampleWorker));
        _cleanup_free_ unsigned *sampled = calloc(n ? n : 1, sizeof(unsigned));
        size_t n_sampled = 0;
        if (!c || !s || !sampled)
                return NULL;
        for (unsigned i = 0; i < n; i++) {
                Worker *w = m->pool.slots[i].worker;
                if (!w)
                        continue;
                c[i] = (RecycleCandidate) {
                        .ready = w->state == WORKER_READY,
                        .recycle_at_usec = w->recycle_at_usec,
                        .max_memory_bytes = w->config->max_memory_bytes,
                };
                if (sample_memory && c[i].ready && c[i].max_memory_bytes) {
                        s[n_sampled].pgid = w->pid;
                        sampled[n_sampled++] = i;
                }
        }
        if (n_sampled > 0 && sample_workers(s, n_sampled, NULL, 0) >= 0)
                for (size_t k = 0; k < n_sampled; k++) {
                        c[sampled[k]].rss_known = s[k].found;
                        c[sampled[k]].rss_bytes = s[k].rss_bytes;
                }

        RecycleReason reason;
        int i = recycle_pick(c, n, now, &reason);
        if (i < 0)
                return NULL;
        Worker *w = m->pool.slots[i].worker;
        if (reason == RECYCLE_LIFETIME)
                snprintf(why, why_size, "it reached max-lifetime=%s (up %s)",
                         format_duration(w->config->max_lifetime_usec, a),
                         format_duration((now - w->started_usec) / USEC_PER_SEC * USEC_PER_SEC, b));
        else
                snprintf(why, why_size, "its resident memory %" PRIu64 "M is above max-memory=%" PRIu64 "M",
                         c[i].rss_bytes >> 20, w->config->max_memory_bytes >> 20);
        return w;
}

static int on_recycle_check(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        char why[160];

        m->recycle_ticks++;
        /* one at a time, and never in the middle of a reload */
        if (!m->stopping && !m->reload) {
                Worker *w = recycle_candidate(m, why, sizeof(why));
                if (w) {
                        _cleanup_free_ bool *targets = calloc(m->pool.n_slots, sizeof(bool));
                        uint64_t request;
                        if (targets) {
                                targets[w->slot] = true;
                                log_worker(LOG_NOTICE, w, "recycling: %s", why);
                                int r = request_restart(m, targets, &request);
                                if (r < 0)
                                        log_warning_errno(r, "slot %u: cannot recycle: %m", w->slot);
                        }
                }
        }
        (void) sd_event_source_set_time_relative(s, RECYCLE_CHECK_USEC);
        return 0;
}

/* The check runs while the config asks for it. */
static void manager_update_recycling(Manager *m) {
        bool wanted = m->config->max_lifetime_usec || m->config->max_memory_bytes;

        if (!wanted) {
                m->recycle_source = sd_event_source_disable_unref(m->recycle_source);
                return;
        }
        if (m->recycle_source)
                return;
        int r = sd_event_add_time_relative(m->event, &m->recycle_source, CLOCK_MONOTONIC, RECYCLE_CHECK_USEC,
                                           100 * USEC_PER_MSEC, on_recycle_check, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->recycle_source, SD_EVENT_ON);
        if (r < 0)
                log_error_errno(r, "cannot start the recycling check: %m");
}

/* ---- notify ---- */

static bool is_worker_pid(pid_t pid, void *userdata) {
        return pool_find(userdata, pid) != NULL;
}

/* Whether a message from uid can come from a worker at all: root, our own
 * uid, or the uid some worker runs as. Checked before anything that costs
 * (the walk up /proc for a worker's descendants). */
static bool uid_may_be_worker(Manager *m, uid_t uid) {
        if (uid == 0 || uid == geteuid() || uid == m->config->uid)
                return true;
        if (m->reload && uid == m->reload->config->uid)
                return true;
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                if (m->pool.slots[i].config && uid == m->pool.slots[i].config->uid)
                        return true;
        return false;
}

static void manager_handle_notify(Manager *m, const struct ucred *sender, const NotifyMessage *msg) {
        Worker *w = NULL;

        if (uid_may_be_worker(m, sender->uid)) {
                pid_t pid = notify_find_worker(sender->pid, is_worker_pid, &m->pool);
                w = pid > 0 ? pool_find(&m->pool, pid) : NULL;
        }
        if (!w) {
                if (ratelimit_allow(&m->notify_drops))
                        log_warning("ignoring notify message from pid %d (uid %u): not a worker of this pool",
                                    (int) sender->pid, (unsigned) sender->uid);
                return;
        }
        m->command_ran = true; /* it talks: it runs */
        if (msg->has_status)
                snprintf(w->status, sizeof(w->status), "%s", msg->status);
        if (msg->watchdog && w->state == WORKER_READY)
                manager_worker_watchdog_arm(m, w);
        if (msg->ready)
                manager_worker_apply(m, w, WORKER_EVENT_NOTIFY_READY);
        if (msg->stopping)
                manager_worker_apply(m, w, WORKER_EVENT_NOTIFY_STOPPING);
}

/* Read and handle up to max datagrams, for at most budget_usec; stops
 * early when none is left. */
static void manager_read_notify(Manager *m, unsigned max, uint64_t budget_usec) {
        uint64_t start = manager_now_usec();
        for (unsigned i = 0; i < max; i++) {
                if (i > 0 && manager_now_usec() - start >= budget_usec)
                        break;
                NotifyMessage msg;
                struct ucred sender;
                const char *reason = NULL;

                int r = notify_receive(m->notify_fd, &sender, &msg, &reason);
                if (r == NOTIFY_NOTHING)
                        break;
                if (r < 0) {
                        log_error_errno(r, "cannot read the notify socket: %m");
                        break; /* never return an error: it would disable the source */
                }
                if (r == NOTIFY_DROPPED) {
                        if (ratelimit_allow(&m->notify_drops))
                                log_warning("dropped a notify message from pid %d: %s", (int) sender.pid, reason);
                        continue;
                }
                manager_handle_notify(m, &sender, &msg);
        }
}

/* A bounded batch per wake-up (64 messages or 2 ms), at normal priority
 * and at most 10 batches per 100 ms (see manager_new()): a flood shares the
 * loop with everything else and costs at most about a fifth of a CPU,
 * whatever each message costs (a descendant's costs a walk up /proc). */
#define NOTIFY_BATCH 64
#define NOTIFY_BATCH_USEC (2 * USEC_PER_MSEC)
#define NOTIFY_RATE_INTERVAL (100 * USEC_PER_MSEC)
#define NOTIFY_RATE_BURST 10
static int on_notify(sd_event_source *s _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        manager_read_notify(userdata, NOTIFY_BATCH, NOTIFY_BATCH_USEC);
        return 0;
}

/* Where the notify socket's private directory goes: systemd's
 * RuntimeDirectory=, else sockherd's runtime directory (/run/sockherd as
 * root, $XDG_RUNTIME_DIR/sockherd otherwise), else $TMPDIR or /tmp. */
static int manager_notify_open(Manager *m, const Config *c) {
        const char *rd = getenv("RUNTIME_DIRECTORY"), *tmp = getenv("TMPDIR");
        char *bases[4] = {};
        size_t n = 0;
        int r = -ENOENT;

        if (rd && *rd == '/')
                bases[n++] = strndup(rd, strcspn(rd, ":")); /* the first of a ':'-separated list */
        bases[n++] = control_dir(geteuid() == 0);
        bases[n++] = strdup(tmp && *tmp == '/' ? tmp : "/tmp");
        /* the workers' group may reach it */
        gid_t group = c->gid != (gid_t) -1 ? c->gid : getegid();
        for (size_t i = 0; i < n; i++) {
                if (!bases[i])
                        continue;
                if (r < 0) {
                        unsigned swept = notify_sweep(bases[i]);
                        if (swept > 0)
                                log_info("removed %u notify socket directories that earlier managers left in %s",
                                         swept, bases[i]);
                        r = notify_socket_open(bases[i], group, &m->notify_address);
                        if (r < 0)
                                log_warning_errno(r, "cannot create the notify socket under %s: %m", bases[i]);
                }
                free(bases[i]);
        }
        if (r < 0)
                return r;
        m->notify_fd = r;
        m->notify_gid = group;
        return 0;
}

/* A reload to workers of another group: they must reach the socket. */
static void manager_notify_follow_group(Manager *m, const Config *c) {
        gid_t group = c->gid != (gid_t) -1 ? c->gid : getegid();
        if (group == m->notify_gid)
                return;
        int r = notify_socket_set_group(m->notify_address, group);
        if (r < 0 && r != -EINVAL)
                log_warning_errno(r, "cannot give the notify socket to group %u: %m", (unsigned) group);
        else
                m->notify_gid = group;
}

/* ---- what workers leave behind ---- */

static bool is_tracked_child(pid_t pid, void *userdata) {
        return pool_find(userdata, pid) != NULL;
}

/* As a subreaper we inherit the descendants a worker leaves behind when
 * they escaped its process group (setsid) and their parent died. */
static int on_sigchld(sd_event_source *s _unused_, const struct signalfd_siginfo *si _unused_, void *userdata) {
        Manager *m = userdata;
        int r = subreaper_reap(is_tracked_child, &m->pool);
        if (r < 0 && ratelimit_allow(&m->notify_drops))
                log_warning_errno(r, "cannot list the manager's children: %m");
        return 0;
}

/* ---- signals ---- */

static void manager_begin_stop(Manager *m, const char *why) {
        m->drain_source = sd_event_source_disable_unref(m->drain_source);
        m->draining = false;
        m->stopping = true;
        log_info("%s: stopping %u workers (stop-timeout=%s)", why, pool_alive(&m->pool),
                 format_duration(m->config->stop_timeout_usec, (char[32]) {}));
        (void) systemd_notify("STOPPING=1");

        run_free(m->reload);
        m->reload = NULL;
        m->n_reload_inbox = 0;
        m->reload_queue = (ReloadQueue) {};
        snprintf(m->reload_error, sizeof(m->reload_error), "the manager is stopping");
        manager_answer_waiters(m, UINT64_MAX, false);

        m->recycle_source = sd_event_source_disable_unref(m->recycle_source);
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                sl->restart_source = sd_event_source_disable_unref(sl->restart_source);
                manager_worker_stop(m, sl->worker);
                manager_worker_stop(m, sl->incoming);
        }
        for (size_t i = 0; i < m->pool.n_retiring; i++)
                manager_worker_stop(m, m->pool.retiring[i]);
        manager_update_status(m);
        manager_check_stopped(m);
}

/* drain-delay: between the stop signal and the stop, /health answers 503
 * and everything else goes on (workers serve, crashed ones are respawned,
 * a running reload continues), so that load balancers take this host out
 * before any worker stops. Reloads, restarts, scaling and re-execs are
 * refused meanwhile, as during a stop. */
static void manager_end_drain(Manager *m) {
        manager_begin_stop(m, "drain-delay over"); /* which ends the drain */
}

static int on_drain_over(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        manager_end_drain(userdata);
        return 0;
}

static int manager_begin_drain(Manager *m, const char *why) {
        int r = sd_event_add_time_relative(m->event, &m->drain_source, CLOCK_MONOTONIC, m->config->drain_delay_usec,
                                           10 * USEC_PER_MSEC, on_drain_over, m);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot start the drain-delay timer, stopping at once: %m", why);
        m->draining = true;
        log_info("%s: draining for %s: /health answers 503 while the %u workers keep serving; then they stop",
                 why, format_duration(m->config->drain_delay_usec, (char[32]) {}), pool_alive(&m->pool));
        (void) systemd_notify("STOPPING=1");
        manager_update_status(m);
        return 0;
}

static void manager_for_each_worker(Manager *m, void (*fn)(Worker *w, int sig), int sig) {
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                if (m->pool.slots[i].worker)
                        fn(m->pool.slots[i].worker, sig);
                if (m->pool.slots[i].incoming)
                        fn(m->pool.slots[i].incoming, sig);
        }
        for (size_t i = 0; i < m->pool.n_retiring; i++)
                fn(m->pool.retiring[i], sig);
}

/* After the drop to user=, the manager shares its uid with the workers,
 * which may then signal it: only the kernel (a terminal's ^C or hang-up),
 * root and the uid we were started as (m->control_uid) may stop, reload,
 * re-exec or scale the pool. The kernel vouches for ssi_uid only for
 * kill() and tgkill() (SI_USER, SI_TKILL); a sigqueue()-style sender
 * (rt_sigqueueinfo, SI_QUEUE and other negative codes) writes its own
 * ssi_pid and ssi_uid, so such a signal is never trusted. SIGKILL and
 * SIGSTOP cannot be caught: a worker can still send those. */
static bool signal_trusted(Manager *m, const struct signalfd_siginfo *si) {
        const char *name = sigabbrev_np((int) si->ssi_signo) ?: "?";

        if (si->ssi_code == SI_KERNEL)
                return true;
        if (si->ssi_code != SI_USER && si->ssi_code != SI_TKILL) {
                if (ratelimit_allow(&m->signal_drops))
                        log_warning("ignoring SIG%s claiming to be from pid %u (uid %u): sent with sigqueue() "
                                    "(si_code %d), so its sender cannot be verified", name,
                                    (unsigned) si->ssi_pid, (unsigned) si->ssi_uid, (int) si->ssi_code);
                return false;
        }
        if (si->ssi_uid == 0 || si->ssi_uid == m->control_uid)
                return true;
        if (ratelimit_allow(&m->signal_drops))
                log_warning("ignoring SIG%s from pid %u (uid %u): only root%s may signal the manager", name,
                            (unsigned) si->ssi_pid, (unsigned) si->ssi_uid,
                            m->control_uid != 0 ? " and the uid it was started as" : "");
        return false;
}

static int on_stop_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (!signal_trusted(m, si))
                return 0;
        if (m->draining) {
                /* a second TERM/INT during the drain-delay: stop now */
                log_warning("SIG%s again: ending the drain delay, stopping the workers now",
                            sigabbrev_np((int) si->ssi_signo));
                manager_end_drain(m);
                return 0;
        }
        if (!m->stopping) {
                if (m->config->drain_delay_usec > 0 && manager_begin_drain(m, sigabbrev_np((int) si->ssi_signo) ? : "signal") >= 0)
                        return 0;
                manager_begin_stop(m, sigabbrev_np((int) si->ssi_signo) ? : "signal");
                return 0;
        }
        /* a second TERM/INT while draining: do not wait any longer */
        log_warning("SIG%s again: killing the remaining workers now", sigabbrev_np((int) si->ssi_signo));
        manager_for_each_worker(m, manager_worker_kill_group, SIGKILL);
        return 0;
}

static int on_reload_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        if (signal_trusted(userdata, si))
                (void) request_reload(userdata, "SIGHUP");
        return 0;
}

static int on_reexec_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        ErrorText why;

        if (!signal_trusted(m, si))
                return 0;
        if (manager_reexec_check(m->reexec, &why) < 0 || manager_reexec_probe(m->reexec, &why) < 0)
                log_warning("SIGUSR2: not re-executing: %s", why.message);
        else
                (void) manager_reexec(m->reexec);
        return 0;
}

static int on_scale_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        unsigned n = m->pool.n_slots;
        if (!signal_trusted(m, si))
                return 0;
        n = si->ssi_signo == SIGTTIN ? n + 1 : n - (n > 1);
        int r = request_scale(m, n);
        if (r < 0)
                log_warning_errno(r, "SIG%s: cannot scale to %u workers: %m", sigabbrev_np((int) si->ssi_signo), n);
        return 0;
}

/* ---- re-exec: the whole state, recorded for the new image and taken back ---- */

int manager_state_record(Manager *m, State *s) {
        *s = (State) {
                .generation = m->generation,
                .last_generation = m->last_generation,
                .requests = m->requests,
                .announced_ready = m->announced_ready,
                .passed_in = m->sockets.passed_in,
                .notify_fd = m->notify_fd,
                .control_fd = manager_control_fd(m->control),
                .control_uid = m->control_uid,
                .http_fd = manager_http_fd(m->http),
        };
        snprintf(s->reload_error, sizeof(s->reload_error), "%s", m->reload_error);
        snprintf(s->notify_address, sizeof(s->notify_address), "%s", m->notify_address);
        snprintf(s->control_path, sizeof(s->control_path), "%s", manager_control_path(m->control) ?: "");
        /* too long for the record: the new image resolves it again */
        const Config *c = m->config;
        if (c->working_directory && c->working_directory_resolved &&
            strlen(c->working_directory) < sizeof(s->working_directory) &&
            strlen(c->working_directory_resolved) < sizeof(s->working_directory_resolved)) {
                strcpy(s->working_directory, c->working_directory);
                strcpy(s->working_directory_resolved, c->working_directory_resolved);
        }
        snprintf(s->http_path, sizeof(s->http_path), "%s", manager_http_path(m->http) ?: "");
        if (manager_balance_record(m->balancing, s) < 0)
                return -ENOMEM;
        return pool_state_record(&m->pool, &m->sockets, s);
}

/* The generation keeps the directory it began in, not where a symlink
 * points now (the file was read again: only if it still names the same
 * directory). */
static int restore_working_directory(Manager *m, const State *s) {
        Config *c = m->config;

        if (!s->working_directory_resolved[0] || !c->working_directory ||
            strcmp(c->working_directory, s->working_directory) != 0 ||
            (c->working_directory_resolved && strcmp(c->working_directory_resolved, s->working_directory_resolved) == 0))
                return 0;
        char *pinned = strdup(s->working_directory_resolved);
        if (!pinned)
                return -ENOMEM;
        log_info("working-directory %s stays %s, as for generation %" PRIu64 " before the re-exec",
                 s->working_directory, pinned, s->generation);
        free(c->working_directory_resolved);
        c->working_directory_resolved = pinned;
        return 0;
}

int manager_restore(Manager *m, const State *s) {
        int r;

        m->restored = true;
        m->generation = s->generation;
        m->last_generation = s->last_generation;
        m->requests = s->requests;
        m->announced_ready = s->announced_ready;
        snprintf(m->reload_error, sizeof(m->reload_error), "%s", s->reload_error);

        r = restore_working_directory(m, s);
        if (r >= 0)
                r = manager_balance_restore(m->balancing, s, m->config->balance);
        if (r >= 0)
                r = pool_state_restore_slots(&m->pool, m->sockets.n, m->config, m->generation, s);
        if (r < 0)
                return r;

        unsigned adopted = 0;
        for (size_t i = 0; i < s->n_workers; i++) {
                const StateWorker *sw = &s->workers[i];
                bool retiring = sw->role == STATE_ROLE_RETIRING;
                if (!retiring && m->pool.slots[sw->slot].worker) {
                        log_warning("state lists two workers for slot %u; pid %d goes", sw->slot, (int) sw->pid);
                        retiring = true;
                }
                Worker *w = manager_adopt_worker(m, sw->pid, sw->slot, sw->generation, sw->state,
                                                 sw->started_usec, retiring);
                if (!w)
                        continue;
                w->recycle_at_usec = sw->recycle_at_usec;
                snprintf(w->status, sizeof(w->status), "%.255s", sw->status);
                if (retiring)
                        pool_state_take_drain_sockets(s, w);
                if (retiring && w->state != WORKER_STOPPING)
                        manager_worker_retire_stop(m, w);
                adopted++;
        }
        /* a slot without a worker was waiting for its respawn */
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                if (!m->pool.slots[i].worker)
                        manager_schedule_restart(m, i, 0);

        log_info("resumed after re-exec: %u workers kept, generation %" PRIu64, adopted, m->generation);
        manager_update_status(m);
        return 0;
}

/* ---- setup ---- */

int manager_new(ConfigSource *source, Config *config, ListenSet *sockets, int control_fd,
                const State *state, char **argv, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->notify_fd = -1;
        m->generation = m->last_generation = 1;
        srandom((unsigned) (getpid() ^ manager_now_usec()));

        r = pool_resize(&m->pool, config->workers);
        if (r < 0)
                goto fail;
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                m->pool.slots[i].config = config_ref(config);
                m->pool.slots[i].generation = m->generation;
        }
        r = sd_event_new(&m->event);
        if (r < 0)
                goto fail;
        m->balancing = manager_balance_new(m->event, &m->pool, &m->sockets);
        if (!m->balancing) {
                r = -ENOMEM;
                goto fail;
        }
        /* sd-event opens a clock's timerfd with its first timer and keeps it
         * for the loop's life: open CLOCK_MONOTONIC's now, so that arming a
         * respawn or worker timer never needs a new fd, even when the
         * manager is out of them */
        sd_event_source *probe = NULL;
        r = sd_event_add_time(m->event, &probe, CLOCK_MONOTONIC, USEC_INFINITY, 0, NULL, NULL);
        sd_event_source_disable_unref(probe);
        if (r < 0)
                goto fail;

        r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_reload_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGUSR2 | SD_EVENT_SIGNAL_PROCMASK, on_reexec_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTTIN | SD_EVENT_SIGNAL_PROCMASK, on_scale_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTTOU | SD_EVENT_SIGNAL_PROCMASK, on_scale_signal, m);
        /* workers have their own child sources; this one reaps what they leave */
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGCHLD | SD_EVENT_SIGNAL_PROCMASK, on_sigchld, m);
        if (r < 0)
                goto fail;
        r = subreaper_enable();
        if (r < 0)
                goto fail;
        r = systemd_notify_open();
        if (r < 0)
                log_warning_errno(r, "cannot open a socket to systemd's notify socket, using sd_notify() for each message: %m");
        r = watchdog_start(m);
        if (r < 0)
                goto fail;

        if (state) {
                /* the workers know this address: keep the socket */
                m->notify_fd = state->notify_fd;
                m->notify_address = strdup(state->notify_address);
                if (!m->notify_address) {
                        r = -ENOMEM;
                        goto fail;
                }
                m->notify_gid = (gid_t) -1; /* unknown: set at the first spawn */
        } else {
                r = manager_notify_open(m, config);
                if (r < 0) {
                        log_error_errno(r, "cannot create the worker-notify socket: %m");
                        goto fail;
                }
        }
        m->reexec = manager_reexec_new(m, argv);
        if (!m->reexec) {
                r = log_error_errno(-ENOMEM, "cannot set up re-exec: %m");
                goto fail;
        }
        r = sd_event_add_io(m->event, &m->notify_source, m->notify_fd, EPOLLIN, on_notify, m);
        if (r < 0)
                goto fail;
        /* Normal priority, and at most NOTIFY_RATE_BURST batches per
         * NOTIFY_RATE_INTERVAL: a flood from a worker cannot starve signals,
         * child exits, timers or control clients, and costs a bounded share
         * of CPU. A worker's last message before its death is not lost to
         * this: on_child_exit() reads what is pending first. */
        r = sd_event_source_set_ratelimit(m->notify_source, NOTIFY_RATE_INTERVAL, NOTIFY_RATE_BURST);
        if (r < 0)
                goto fail;

        m->config = config_ref(config);
        m->metrics = manager_metrics_new(m);
        if (!m->metrics) {
                r = log_error_errno(-ENOMEM, "cannot set up the metrics: %m");
                goto fail;
        }
        /* before any drop of root (main.c): the uid we were started as, kept across re-execs */
        m->control_uid = state && state->control_uid >= 0 ? (uid_t) state->control_uid : geteuid();
        r = manager_control_new(m, control_fd, state && control_fd >= 0 ? state->control_path : NULL, &m->control);
        control_fd = -1;
        if (r < 0)
                goto fail;
        r = manager_http_new(m, state ? state->http_fd : -1, state ? state->http_path : NULL, &m->http);
        if (r < 0)
                goto fail;
        m->source = *source;
        *source = (ConfigSource) {};
        m->sockets = *sockets;
        *sockets = (ListenSet) {};
        /* before any worker could call listen() on them */
        for (size_t i = 0; i < m->sockets.n; i++) {
                ListenSocket *s = &m->sockets.sockets[i];
                unsigned queued, backlog;
                if (s->backlog_taken == 0 && listen_queue(s->fd, &queued, &backlog) >= 0)
                        s->backlog_taken = backlog;
        }
        m->unit = manager_unit_new(m);
        manager_unit_check_stop_timeout(m->unit);
        *ret = m;
        return 0;

fail:
        safe_close(control_fd);
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->control = manager_control_free(m->control);
        m->unit = manager_unit_free(m->unit);
        m->http = manager_http_free(m->http);
        sd_event_source_disable_unref(m->drain_source);
        run_free(m->reload);
        free(m->reload_inbox);
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                sd_event_source_disable_unref(sl->restart_source);
                sl->restart_source = NULL;
                sl->worker = manager_worker_free(sl->worker);
                sl->incoming = manager_worker_free(sl->incoming);
        }
        for (size_t i = 0; i < m->pool.n_retiring; i++)
                manager_worker_free(m->pool.retiring[i]);
        pool_done(&m->pool, m->sockets.n);
        sd_event_source_disable_unref(m->notify_source);
        sd_event_source_disable_unref(m->watchdog_source);
        systemd_notify_close();
        sd_event_source_disable_unref(m->recycle_source);
        m->metrics = manager_metrics_free(m->metrics);
        m->balancing = manager_balance_free(m->balancing);
        m->reexec = manager_reexec_free(m->reexec);
        safe_close(m->notify_fd);
        /* (a re-exec keeps it: exec does not come back here) */
        notify_socket_remove(m->notify_address);
        free(m->notify_address);
        sd_event_unref(m->event);
        listen_set_clear(&m->sockets);
        config_free(m->config);
        config_source_done(&m->source);
        free(m);
        return NULL;
}

void manager_adopt_stored_slots(Manager *m, ListenSet *stored) {
        manager_balance_adopt_stored(m->balancing, stored);
}

int manager_choose_balance(Manager *m) {
        return manager_balance_prepare(m->balancing, m->config);
}

Balance manager_balance_in_effect(const Manager *m) {
        return manager_balance_mode(m->balancing);
}

int manager_run(Manager *m) {
        if (!m->restored)
                log_info("starting %u workers: %s (ready=%s)", m->pool.n_slots, m->config->command[0],
                         ready_mode_to_string(m->config->ready_mode));
        manager_update_status(m);

        if (!m->restored) {
                int r = manager_balance_setup(m->balancing, m->config->backlog, manager_workers_wanted(m));
                if (r != 0)
                        return r; /* an exit code: the pool cannot run like this */
        }
        if (!m->restored)
                for (unsigned i = 0; i < m->pool.n_slots; i++)
                        (void) manager_spawn(m, i, m->config, m->generation, false);
        manager_update_recycling(m);
        manager_metrics_update(m);

        int r = sd_event_loop(m->event);

        /* nothing of the pool outlives it: what escaped the workers' process
         * groups (setsid) and was handed to us goes too */
        int killed = subreaper_end_others(is_tracked_child, &m->pool, USEC_PER_SEC);
        if (killed > 0)
                log_warning("killed %d processes that workers had left running outside their process group", killed);
        else if (killed < 0)
                log_warning_errno(killed, "cannot list what the workers left running: %m");
        return r;
}
