/* The manager's control commands: what sockherdctl asks, answered from the
 * manager's state. The transport (permissions, limits, timeouts) is in
 * control.c; the wire format in control-protocol.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager-internal.h"
#include "sockherd/log.h"
#include "sockherd/metrics.h"
#include "sockherd/parse.h"
#include "sockherd/reuseport.h"
#include "sockherd/util.h"

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

        control_reply_init(&r, NULL);
        (void) manager_metrics_refresh(m); /* without numbers, the status still answers */
        manager_check_backlogs(m);
        manager_format_status(m, status, sizeof(status));
        control_reply_add(&r, "name", "%s", m->config->name);
        control_reply_add(&r, "manager.pid", "%d", (int) getpid());
        /* the running image's version: after a re-exec, the new program's */
        control_reply_add(&r, "manager.version", "%s", SOCKHERD_VERSION);
        control_reply_add(&r, "status", "%s", status);
        control_reply_add(&r, "generation", "%" PRIu64, m->generation);
        control_reply_add(&r, "workers.ready", "%u", pool_ready(&m->pool));
        control_reply_add(&r, "workers.wanted", "%u", manager_workers_wanted(m));
        ReloadSnapshot snap;
        manager_reload_snapshot(m, &snap);
        control_reply_add(&r, "reload.state", "%s", snap.state);
        if (m->reload) {
                control_reply_add(&r, "reload.generation", "%" PRIu64, snap.generation);
                control_reply_add(&r, "reload.replaced", "%u", snap.done);
                control_reply_add(&r, "reload.targets", "%u", snap.total);
                if (snap.canaries > 0) {
                        control_reply_add(&r, "reload.canaries", "%u", snap.canaries);
                        control_reply_add(&r, "reload.canary_left_usec", "%" PRIu64, snap.canary_left_usec);
                }
        }
        control_reply_add(&r, "reload.last_error", "%s", m->reload_error);
        control_reply_add(&r, "command", "%s", m->config->command[0]);
        control_reply_add(&r, "ready_mode", "%s", ready_mode_to_string(m->config->ready_mode));
        for (size_t i = 0; i < m->sockets.n; i++) {
                snprintf(key, sizeof(key), "socket.%zu.name", i);
                control_reply_add(&r, key, "%s", m->sockets.sockets[i].name);
                snprintf(key, sizeof(key), "socket.%zu.address", i);
                control_reply_add(&r, key, "%s", socket_address_format(m->sockets.sockets[i].fd, address) >= 0 ? address : "?");
                unsigned queued, backlog;
                if (listen_queue(m->sockets.sockets[i].fd, &queued, &backlog) >= 0 &&
                    manager_socket_backlog(m, i, &backlog) >= 0) {
                        snprintf(key, sizeof(key), "socket.%zu.queue", i);
                        control_reply_add(&r, key, "%u", queued);
                        snprintf(key, sizeof(key), "socket.%zu.backlog", i);
                        control_reply_add(&r, key, "%u", backlog);
                        if (backlog < m->sockets.sockets[i].backlog_taken) {
                                snprintf(key, sizeof(key), "socket.%zu.backlog_lowered_from", i);
                                control_reply_add(&r, key, "%u", m->sockets.sockets[i].backlog_taken);
                        }
                }
        }
        control_reply_add(&r, "balance", "%s", balance_to_string(m->balance));
        control_reply_add(&r, "balance.requested", "%s", balance_to_string(m->config->balance));
        control_reply_add(&r, "balance.reason", "%s", m->balance_reason);
        if (m->balance != BALANCE_SHARED)
                for (unsigned i = 0; i < m->pool.n_slots; i++) {
                        snprintf(key, sizeof(key), "slot.%u.queue", i);
                        control_reply_add(&r, key, "%u", manager_slot_queue(m, i));
                }
        if (m->balance == BALANCE_LEAST_CONNECTIONS) {
                _cleanup_free_ double *live = calloc(m->pool.n_slots ? m->pool.n_slots : 1, sizeof(double));
                for (unsigned i = 0; i < m->pool.n_slots; i++) {
                        unsigned n = manager_slot_connections(m, i);
                        snprintf(key, sizeof(key), "slot.%u.connections", i);
                        control_reply_add(&r, key, "%u", n);
                        if (live)
                                live[i] = n;
                }
                Fairness f;
                if (live) {
                        fairness_compute(live, m->pool.n_slots, &f);
                        control_reply_add(&r, "balance.jain_connections", "%.3f", f.jain);
                }
                uint64_t unplaced, untracked;
                manager_balancer_stats(m, &unplaced, &untracked);
                control_reply_add(&r, "balance.unplaced", "%" PRIu64, unplaced);
                control_reply_add(&r, "balance.untracked", "%" PRIu64, untracked);
        }
        /* every slot, also one without a worker (in backoff, in a crash loop) */
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                const Slot *sl = &m->pool.slots[i];
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
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                const Slot *sl = &m->pool.slots[i];
                if (sl->worker)
                        add_worker(m, &r, index++, sl->worker, "serving", now, sl->restarts);
                if (sl->incoming)
                        add_worker(m, &r, index++, sl->incoming, "incoming", now, sl->restarts);
        }
        for (size_t i = 0; i < m->pool.n_retiring; i++)
                add_worker(m, &r, index++, m->pool.retiring[i], "retiring", now, 0);
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

static int add_waiter(Manager *m, ControlClient *c, uint64_t request) {
        return ARRAY_APPEND(m->waiters, m->n_waiters, (Waiter) { c, request });
}

void manager_answer_waiters(Manager *m, uint64_t covers, bool ok) {
        for (size_t i = 0; i < m->n_waiters;) {
                Waiter w = m->waiters[i];
                if (w.request > covers) {
                        i++;
                        continue;
                }
                m->waiters[i] = m->waiters[--m->n_waiters];
                if (ok) {
                        ControlReply r;
                        control_reply_init(&r, NULL);
                        control_reply_add(&r, "generation", "%" PRIu64, m->generation);
                        control_reply_add(&r, "workers.ready", "%u", pool_ready(&m->pool));
                        control_client_reply(w.client, &r);
                } else
                        control_client_reply_error(w.client, m->reload_error[0] ? m->reload_error : "failed");
        }
}

static void command_reload(Manager *m, ControlClient *c, char **argv, int argc) {
        bool wait = argc == 2 && strcmp(argv[1], "--wait") == 0;

        if (argc > 2 || (argc == 2 && !wait)) {
                control_client_reply_error(c, "usage: reload [--wait]");
                return;
        }
        if (m->stopping || m->draining) {
                control_client_reply_error(c, "the manager is stopping");
                return;
        }
        uint64_t request = manager_request_reload(m, "control request");
        if (!wait || !m->reload) {
                /* not waiting, or it already ended (an invalid config ends at once) */
                if (wait && m->reload_error[0] && !m->reload)
                        control_client_reply_error(c, m->reload_error);
                else {
                        ControlReply r;
                        control_reply_init(&r, NULL);
                        control_reply_add(&r, "generation", "%" PRIu64, m->generation);
                        control_client_reply(c, &r);
                }
                return;
        }
        if (add_waiter(m, c, request) < 0)
                control_client_reply_error(c, "out of memory");
}

static void command_scale(Manager *m, ControlClient *c, char **argv, int argc) {
        unsigned n;

        if (argc != 2 || parse_uint_range(argv[1], 1, CONFIG_WORKERS_MAX, &n) < 0) {
                control_client_reply_error(c, "usage: scale N (1 to 1024)");
                return;
        }
        int r = manager_scale(m, n);
        if (r == -EBUSY)
                control_client_reply_error(c, "a reload or restart is running; scale when it has ended");
        else if (r < 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "cannot scale: %s", strerror(-r));
                control_client_reply_error(c, msg);
        } else {
                ControlReply reply;
                control_reply_init(&reply, NULL);
                control_reply_add(&reply, "workers.wanted", "%u", m->pool.n_slots);
                control_client_reply(c, &reply);
        }
}

static void command_restart(Manager *m, ControlClient *c, char **argv, int argc) {
        unsigned n = m->pool.n_slots, slot = 0;
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

        uint64_t request;
        int r = manager_restart_slots(m, targets, &request);
        if (r == -EBUSY)
                control_client_reply_error(c, "a reload or restart is running; try again when it has ended");
        else if (r < 0)
                control_client_reply_error(c, r == -ESHUTDOWN ? "the manager is stopping" : "cannot restart");
        else if (!m->reload) {
                ControlReply reply;   /* it ended already */
                control_reply_init(&reply, NULL);
                control_client_reply(c, &reply);
        } else if (add_waiter(m, c, request) < 0)
                control_client_reply_error(c, "out of memory");
}

static int on_reexec_deferred(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        char why[256];

        m->reexec_source = sd_event_source_disable_unref(s);
        if (manager_reexec_check(m, why, sizeof(why)) < 0)
                log_warning("not re-executing: %s", why);
        else
                (void) manager_reexec(m);
        return 0;
}

static void command_reexec(Manager *m, ControlClient *c, int argc) {
        char why[512];

        if (argc != 1) {
                control_client_reply_error(c, "usage: reexec");
                return;
        }
        if (manager_reexec_check(m, why, sizeof(why)) < 0 || manager_reexec_probe(m, why, sizeof(why)) < 0) {
                control_client_reply_error(c, why);
                return;
        }
        /* answer first: the exec closes this connection */
        if (!m->reexec_source &&
            sd_event_add_defer(m->event, &m->reexec_source, on_reexec_deferred, m) < 0) {
                control_client_reply_error(c, "out of memory");
                return;
        }
        ControlReply r;
        control_reply_init(&r, NULL);
        control_reply_add(&r, "manager.pid", "%d", (int) getpid());
        control_client_reply(c, &r);
}

static void on_request(ControlClient *c, char **argv, int argc, void *userdata) {
        Manager *m = userdata;

        if (strcmp(argv[0], "status") == 0 && argc == 1)
                command_status(m, c);
        else if (strcmp(argv[0], "metrics") == 0 && argc == 1)
                command_metrics(m, c);
        else if (strcmp(argv[0], "reload") == 0)
                command_reload(m, c, argv, argc);
        else if (strcmp(argv[0], "scale") == 0)
                command_scale(m, c, argv, argc);
        else if (strcmp(argv[0], "restart") == 0)
                command_restart(m, c, argv, argc);
        else if (strcmp(argv[0], "reexec") == 0)
                command_reexec(m, c, argc);
        else {
                char msg[160];
                snprintf(msg, sizeof(msg), "unknown command '%.64s' (status, metrics, reload, scale, restart, reexec)", argv[0]);
                control_client_reply_error(c, msg);
        }
}

static void on_gone(ControlClient *c, void *userdata) {
        Manager *m = userdata;
        for (size_t i = 0; i < m->n_waiters; i++)
                if (m->waiters[i].client == c) {
                        m->waiters[i] = m->waiters[--m->n_waiters];
                        return;
                }
}

static void on_event(const char *message, void *userdata) {
        log_warning("%s", message);
}

int manager_control_open(Manager *m, int passed_fd) {
        static const ControlHandlers handlers = { on_request, on_gone, on_event };
        const char *setting = m->config->control;
        int fd = passed_fd, r;

        if (fd < 0 && setting && strcmp(setting, "none") == 0)
                return 0;
        if (fd < 0) {
                _cleanup_free_ char *path = setting ? strdup(setting) : control_default_path(m->config->name, false);
                if (!path) {
                        log_warning("no control socket: no runtime directory (set 'control =' or XDG_RUNTIME_DIR)");
                        return 0;
                }
                char why[512];
                fd = control_socket_bind(path, m->config->control_gid, why, sizeof(why));
                if (fd == -EADDRINUSE && !setting && !m->config->name_explicit) {
                        /* two pools run by hand without names: the first keeps the socket */
                        log_warning("no control socket: another pool named '%s' uses %s; give this one "
                                    "a --name to control it", m->config->name, path);
                        return 0;
                }
                if (fd == -EADDRINUSE)
                        return log_error_errno(fd, "control socket %s answers already: is another sockherd "
                                               "named '%s' running? (%m)", path, m->config->name);
                if (fd < 0 && why[0])
                        return log_error_errno(fd, "cannot create the control socket %s: %s", path, why);
                if (fd < 0)
                        return log_error_errno(fd, "cannot create the control socket %s: %m", path);
                m->control_path = TAKE_PTR(path);
                log_info("control socket: %s", m->control_path);
        }
        r = control_server_new(m->event, fd, m->control_uid, m->config->control_gid, &handlers, m, &m->control);
        if (r < 0)
                return log_error_errno(r, "cannot serve the control socket: %m");
        return 0;
}

void manager_control_close(Manager *m) {
        m->control = control_server_free(m->control);
        free(m->waiters);
        m->waiters = NULL;
        m->n_waiters = 0;
        /* A manager that dropped root cannot remove the file it created as
         * root in root's directory. Harmless (the next start replaces a
         * stale socket), but say so: the file is left behind. */
        if (m->control_path && unlink(m->control_path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "cannot remove the control socket %s at exit: %m (running as uid %u%s); "
                                  "it is left behind, and the next start replaces it",
                                  m->control_path, (unsigned) geteuid(),
                                  m->control_uid != geteuid() ? ", having dropped root" : "");
        free(m->control_path);
        m->control_path = NULL;
}
