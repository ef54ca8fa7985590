/* The manager's control commands: what sockherdctl asks, answered from the
 * manager's state. The transport (permissions, limits, timeouts) is in
 * control.c; the wire format in control-protocol.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager-control.h"
#include "manager-balance.h"
#include "manager-view.h"
#include "sockherd/control.h"
#include "sockherd/log.h"
#include "sockherd/metrics.h"
#include "sockherd/parse.h"
#include "sockherd/reuseport.h"
#include "sockherd/util.h"

/* A control client waiting for the end of a reload or restart. */
typedef struct Waiter {
        ControlClient *client;
        uint64_t ticket;
} Waiter;

struct ManagerControl {
        Manager *manager;
        ControlServer *server;
        char *path;             /* a socket file we created, removed at exit */
        Waiter *waiters;
        size_t n_waiters;
};

static void add_worker(Manager *m, ControlReply *r, unsigned index, const Worker *w, const char *role,
                       uint64_t now, unsigned restarts) {
        char key[64];
#define KEY(name) (snprintf(key, sizeof(key), "worker.%u." name, index), key)
        control_reply_add(r, KEY("slot"), "%u", w->slot);
        control_reply_add(r, KEY("pid"), "%d", (int) w->pid);
        control_reply_add(r, KEY("generation"), "%" PRIu64, w->generation);
        control_reply_add(r, KEY("state"), "%s", worker_state_to_string(w->state));
        control_reply_add(r, KEY("role"), "%s", role);
        control_reply_add(r, KEY("uptime_usec"), "%" PRIu64, now - w->started_usec);
        control_reply_add(r, KEY("restarts"), "%u", restarts);
        control_reply_add(r, KEY("status"), "%s", w->status);
#undef KEY
        snprintf(key, sizeof(key), "worker.%u", index);
        manager_metrics_add_worker(m, r, key, w->pid);
}

static void command_status(Manager *m, ControlClient *c) {
        ControlReply r;
        uint64_t now = manager_now_usec();
        char status[512], key[64], address[128];
        unsigned index = 0;

        ManagerView v;
        control_reply_init(&r, NULL);
        (void) manager_metrics_refresh(m); /* without numbers, the status still answers */
        manager_view(m, &v);
        manager_balance_check_backlogs(v.balancing);
        manager_format_status(m, status, sizeof(status));
        control_reply_add(&r, "name", "%s", v.config->name);
        control_reply_add(&r, "manager.pid", "%d", (int) getpid());
        /* the running image's version: after a re-exec, the new program's */
        control_reply_add(&r, "manager.version", "%s", SOCKHERD_VERSION);
        control_reply_add(&r, "status", "%s", status);
        control_reply_add(&r, "generation", "%" PRIu64, v.generation);
        control_reply_add(&r, "workers.ready", "%u", pool_ready(v.pool));
        control_reply_add(&r, "workers.wanted", "%u", v.workers_wanted);
        const ReloadSnapshot snap = v.reload;
        control_reply_add(&r, "reload.state", "%s", snap.state);
        if (strcmp(snap.state, "idle") != 0) {
                control_reply_add(&r, "reload.generation", "%" PRIu64, snap.generation);
                control_reply_add(&r, "reload.replaced", "%u", snap.done);
                control_reply_add(&r, "reload.targets", "%u", snap.total);
                if (snap.canaries > 0) {
                        control_reply_add(&r, "reload.canaries", "%u", snap.canaries);
                        control_reply_add(&r, "reload.canary_left_usec", "%" PRIu64, snap.canary_left_usec);
                }
        }
        control_reply_add(&r, "reload.last_error", "%s", v.reload_error);
        control_reply_add(&r, "command", "%s", v.config->command[0]);
        control_reply_add(&r, "ready_mode", "%s", ready_mode_to_string(v.config->ready_mode));
        for (size_t i = 0; i < v.sockets->n; i++) {
                snprintf(key, sizeof(key), "socket.%zu.name", i);
                control_reply_add(&r, key, "%s", v.sockets->sockets[i].name);
                snprintf(key, sizeof(key), "socket.%zu.address", i);
                control_reply_add(&r, key, "%s", socket_address_format(v.sockets->sockets[i].fd, address) >= 0 ? address : "?");
                unsigned queued, backlog;
                if (listen_queue(v.sockets->sockets[i].fd, &queued, &backlog) >= 0 &&
                    manager_balance_socket_backlog(v.balancing, i, &backlog) >= 0) {
                        snprintf(key, sizeof(key), "socket.%zu.queue", i);
                        control_reply_add(&r, key, "%u", queued);
                        snprintf(key, sizeof(key), "socket.%zu.backlog", i);
                        control_reply_add(&r, key, "%u", backlog);
                        if (backlog < v.sockets->sockets[i].backlog_taken) {
                                snprintf(key, sizeof(key), "socket.%zu.backlog_lowered_from", i);
                                control_reply_add(&r, key, "%u", v.sockets->sockets[i].backlog_taken);
                        }
                }
        }
        control_reply_add(&r, "balance", "%s", balance_to_string(v.balance));
        control_reply_add(&r, "balance.requested", "%s", balance_to_string(v.config->balance));
        control_reply_add(&r, "balance.reason", "%s", v.balance_reason);
        if (v.balance != BALANCE_SHARED)
                for (unsigned i = 0; i < v.pool->n_slots; i++) {
                        snprintf(key, sizeof(key), "slot.%u.queue", i);
                        control_reply_add(&r, key, "%u", manager_balance_slot_queue(v.balancing, i));
                }
        if (v.balance == BALANCE_LEAST_CONNECTIONS) {
                _cleanup_free_ double *live = calloc(v.pool->n_slots ? v.pool->n_slots : 1, sizeof(double));
                for (unsigned i = 0; i < v.pool->n_slots; i++) {
                        unsigned n = manager_balance_slot_connections(v.balancing, i);
                        snprintf(key, sizeof(key), "slot.%u.connections", i);
                        control_reply_add(&r, key, "%u", n);
                        if (live)
                                live[i] = n;
                }
                Fairness f;
                if (live) {
                        fairness_compute(live, v.pool->n_slots, &f);
                        control_reply_add(&r, "balance.jain_connections", "%.3f", f.jain);
                }
                uint64_t unplaced, untracked;
                manager_balance_stats(v.balancing, &unplaced, &untracked);
                control_reply_add(&r, "balance.unplaced", "%" PRIu64, unplaced);
                control_reply_add(&r, "balance.untracked", "%" PRIu64, untracked);
        }
        /* every slot, also one without a worker (in backoff, in a crash loop) */
        for (unsigned i = 0; i < v.pool->n_slots; i++) {
                const Slot *sl = &v.pool->slots[i];
                uint64_t at;
#define KEY(name) (snprintf(key, sizeof(key), "slot.%u." name, i), key)
                control_reply_add(&r, KEY("state"), "%s", slot_state_to_string(sl));
                control_reply_add(&r, KEY("generation"), "%" PRIu64, sl->generation);
                control_reply_add(&r, KEY("restarts"), "%u", sl->restarts);
                control_reply_add(&r, KEY("exits_in_a_row"), "%u", sl->backoff.failures);
                control_reply_add(&r, KEY("last_exit"), "%s", sl->last_exit);
                if (sl->restart_source && sd_event_source_get_time(sl->restart_source, &at) >= 0)
                        control_reply_add(&r, KEY("next_start_usec"), "%" PRIu64, at > now ? at - now : 0);
#undef KEY
        }
        for (unsigned i = 0; i < v.pool->n_slots; i++) {
                const Slot *sl = &v.pool->slots[i];
                if (sl->worker)
                        add_worker(m, &r, index++, sl->worker, "serving", now, sl->restarts);
                if (sl->incoming)
                        add_worker(m, &r, index++, sl->incoming, "incoming", now, sl->restarts);
        }
        for (size_t i = 0; i < v.pool->n_retiring; i++)
                add_worker(m, &r, index++, v.pool->retiring[i], "retiring", now, 0);
        control_reply_add(&r, "workers.count", "%u", index);
        manager_metrics_add_pool(m, &r);
        control_client_reply(c, &r);
}

static void command_metrics(Manager *m, ControlClient *c) {
        _cleanup_free_ char *text = NULL;
        int r = manager_metrics_refresh(m);
        if (r >= 0)
                r = manager_metrics_text(m, &text);
        if (r < 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "cannot sample the workers: %s", strerror(-r));
                control_client_reply_error(c, msg);
                return;
        }
        ControlReply reply;
        control_reply_init(&reply, NULL);
        control_reply_add_text(&reply, "text", text);
        control_client_reply(c, &reply);
}

static int add_waiter(ManagerControl *ctl, ControlClient *c, uint64_t ticket) {
        return ARRAY_APPEND(ctl->waiters, ctl->n_waiters, (Waiter) { c, ticket });
}

static void reply_done(Manager *m, ControlClient *c) {
        ManagerView v;
        ControlReply r;

        manager_view(m, &v);
        control_reply_init(&r, NULL);
        control_reply_add(&r, "generation", "%" PRIu64, v.generation);
        control_reply_add(&r, "workers.ready", "%u", pool_ready(v.pool));
        control_client_reply(c, &r);
}

/* The transactions up to `covers` ended: answer the clients waiting for them. */
static void on_transaction_done(uint64_t covers, bool ok, const char *error, void *userdata) {
        ManagerControl *ctl = userdata;

        for (size_t i = 0; i < ctl->n_waiters;) {
                Waiter w = ctl->waiters[i];
                if (w.ticket > covers) {
                        i++;
                        continue;
                }
                ctl->waiters[i] = ctl->waiters[--ctl->n_waiters];
                if (ok)
                        reply_done(ctl->manager, w.client);
                else
                        control_client_reply_error(w.client, error && error[0] ? error : "failed");
        }
}

static void command_reload(ManagerControl *ctl, ControlClient *c, char **argv, int argc) {
        bool wait = argc == 2 && strcmp(argv[1], "--wait") == 0;
        ManagerRequestResult res;

        if (argc > 2 || (argc == 2 && !wait)) {
                control_client_reply_error(c, "usage: reload [--wait]");
                return;
        }
        int r = manager_request(ctl->manager, &(ManagerRequest) { .type = MANAGER_REQUEST_RELOAD,
                                                                  .who = "control request" }, &res);
        if (r < 0) {
                control_client_reply_error(c, res.error.message);
                return;
        }
        if (wait && res.running) {
                if (add_waiter(ctl, c, res.ticket) < 0)
                        control_client_reply_error(c, "out of memory");
                return;
        }
        /* not waiting, or it already ended (an invalid config ends at once) */
        if (wait && res.error.message[0])
                control_client_reply_error(c, res.error.message);
        else {
                ManagerView v;
                ControlReply reply;
                manager_view(ctl->manager, &v);
                control_reply_init(&reply, NULL);
                control_reply_add(&reply, "generation", "%" PRIu64, v.generation);
                control_client_reply(c, &reply);
        }
}

static void command_scale(ManagerControl *ctl, ControlClient *c, char **argv, int argc) {
        ManagerRequestResult res;
        unsigned n;

        if (argc != 2 || parse_uint_range(argv[1], 1, CONFIG_WORKERS_MAX, &n) < 0) {
                control_client_reply_error(c, "usage: scale N (1 to 1024)");
                return;
        }
        if (manager_request(ctl->manager, &(ManagerRequest) { .type = MANAGER_REQUEST_SCALE, .workers = n },
                            &res) < 0) {
                control_client_reply_error(c, res.error.message);
                return;
        }
        ManagerView v;
        ControlReply reply;
        manager_view(ctl->manager, &v);
        control_reply_init(&reply, NULL);
        control_reply_add(&reply, "workers.wanted", "%u", v.pool->n_slots);
        control_client_reply(c, &reply);
}

static void command_restart(ManagerControl *ctl, ControlClient *c, char **argv, int argc) {
        ManagerView v;
        ManagerRequestResult res;

        manager_view(ctl->manager, &v);
        unsigned n = v.pool->n_slots, slot = 0;
        bool all = argc == 2 && strcmp(argv[1], "all") == 0;
        if (argc != 2 || (!all && parse_uint_range(argv[1], 0, n ? n - 1 : 0, &slot) < 0)) {
                char msg[96];
                snprintf(msg, sizeof(msg), "usage: restart SLOT|all (slots 0 to %u)", n ? n - 1 : 0);
                control_client_reply_error(c, msg);
                return;
        }
        _cleanup_free_ bool *targets = calloc(n ? n : 1, sizeof(bool));
        if (!targets) {
                control_client_reply_error(c, "out of memory");
                return;
        }
        for (unsigned i = 0; i < n; i++)
                targets[i] = all || i == slot;

        if (manager_request(ctl->manager, &(ManagerRequest) { .type = MANAGER_REQUEST_RESTART, .slots = targets },
                            &res) < 0)
                control_client_reply_error(c, res.error.message);
        else if (!res.running) {
                ControlReply reply;   /* it ended already */
                control_reply_init(&reply, NULL);
                control_client_reply(c, &reply);
        } else if (add_waiter(ctl, c, res.ticket) < 0)
                control_client_reply_error(c, "out of memory");
}

static void command_reexec(ManagerControl *ctl, ControlClient *c, int argc) {
        ManagerRequestResult res;

        if (argc != 1) {
                control_client_reply_error(c, "usage: reexec");
                return;
        }
        /* checked and probed now; the exec comes from the loop, after this answer */
        if (manager_request(ctl->manager, &(ManagerRequest) { .type = MANAGER_REQUEST_REEXEC }, &res) < 0) {
                control_client_reply_error(c, res.error.message);
                return;
        }
        ControlReply r;
        control_reply_init(&r, NULL);
        control_reply_add(&r, "manager.pid", "%d", (int) getpid());
        control_client_reply(c, &r);
}

static void on_request(ControlClient *c, char **argv, int argc, void *userdata) {
        ManagerControl *ctl = userdata;

        if (strcmp(argv[0], "status") == 0 && argc == 1)
                command_status(ctl->manager, c);
        else if (strcmp(argv[0], "metrics") == 0 && argc == 1)
                command_metrics(ctl->manager, c);
        else if (strcmp(argv[0], "reload") == 0)
                command_reload(ctl, c, argv, argc);
        else if (strcmp(argv[0], "scale") == 0)
                command_scale(ctl, c, argv, argc);
        else if (strcmp(argv[0], "restart") == 0)
                command_restart(ctl, c, argv, argc);
        else if (strcmp(argv[0], "reexec") == 0)
                command_reexec(ctl, c, argc);
        else {
                char msg[160];
                snprintf(msg, sizeof(msg), "unknown command '%.64s' (status, metrics, reload, scale, restart, reexec)", argv[0]);
                control_client_reply_error(c, msg);
        }
}

static void on_gone(ControlClient *c, void *userdata) {
        ManagerControl *ctl = userdata;
        for (size_t i = 0; i < ctl->n_waiters; i++)
                if (ctl->waiters[i].client == c) {
                        ctl->waiters[i] = ctl->waiters[--ctl->n_waiters];
                        return;
                }
}

static void on_event(const char *message, void *userdata) {
        log_warning("%s", message);
}

int manager_control_new(Manager *m, int passed_fd, const char *passed_path, ManagerControl **ret) {
        static const ControlHandlers handlers = { on_request, on_gone, on_event };
        ManagerView v;
        int fd = passed_fd, r;

        *ret = NULL;
        manager_view(m, &v);
        const char *setting = v.config->control;
        if (fd < 0 && setting && strcmp(setting, "none") == 0)
                return 0;
        _cleanup_(manager_control_freep) ManagerControl *ctl = calloc(1, sizeof(ManagerControl));
        if (!ctl)
                return log_error_errno(-ENOMEM, "cannot serve the control socket: %m");
        ctl->manager = m;
        if (fd >= 0 && passed_path && passed_path[0]) {
                ctl->path = strdup(passed_path); /* ours to remove at exit */
                if (!ctl->path)
                        return log_error_errno(-ENOMEM, "cannot serve the control socket: %m");
        }
        if (fd < 0) {
                _cleanup_free_ char *path = setting ? strdup(setting) : control_default_path(v.config->name, false);
                if (!path) {
                        log_warning("no control socket: no runtime directory (set 'control =' or XDG_RUNTIME_DIR)");
                        return 0;
                }
                ErrorText why;
                fd = control_socket_bind(path, v.config->control_gid, &why);
                if (fd == -EADDRINUSE && !setting && !v.config->name_explicit) {
                        /* two pools run by hand without names: the first keeps the socket */
                        log_warning("no control socket: another pool named '%s' uses %s; give this one "
                                    "a --name to control it", v.config->name, path);
                        return 0;
                }
                if (fd == -EADDRINUSE)
                        return log_error_errno(fd, "control socket %s answers already: is another sockherd "
                                               "named '%s' running? (%m)", path, v.config->name);
                if (fd < 0 && why.message[0])
                        return log_error_errno(fd, "cannot create the control socket %s: %s", path, why.message);
                if (fd < 0)
                        return log_error_errno(fd, "cannot create the control socket %s: %m", path);
                ctl->path = TAKE_PTR(path);
                log_info("control socket: %s", ctl->path);
        }
        r = control_server_new(v.event, fd, v.control_uid, v.config->control_gid, &handlers, ctl, &ctl->server);
        if (r < 0)
                return log_error_errno(r, "cannot serve the control socket: %m");
        manager_set_done_handler(m, on_transaction_done, ctl);
        *ret = TAKE_PTR(ctl);
        return 0;
}

ManagerControl *manager_control_free(ManagerControl *ctl) {
        if (!ctl)
                return NULL;
        ManagerView v;
        manager_view(ctl->manager, &v);
        if (ctl->server)
                manager_set_done_handler(ctl->manager, NULL, NULL);
        ctl->server = control_server_free(ctl->server);
        free(ctl->waiters);
        /* A manager that dropped root cannot remove the file it created as
         * root in root's directory. Harmless (the next start replaces a
         * stale socket), but say so: the file is left behind. */
        if (ctl->path && unlink(ctl->path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "cannot remove the control socket %s at exit: %m (running as uid %u%s); "
                                  "it is left behind, and the next start replaces it",
                                  ctl->path, (unsigned) geteuid(),
                                  v.control_uid != geteuid() ? ", having dropped root" : "");
        free(ctl->path);
        free(ctl);
        return NULL;
}

int manager_control_fd(const ManagerControl *ctl) {
        return ctl && ctl->server ? control_server_fd(ctl->server) : -1;
}

const char *manager_control_path(const ManagerControl *ctl) {
        return ctl ? ctl->path : NULL;
}
