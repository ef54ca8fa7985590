/* The manager's load-distribution monitoring: a periodic sample of every
 * worker (when metrics-interval is set), the imbalance detector and its
 * warning, the metrics-file, and the numbers the control commands report.
 * The sampling is sample.c, the math metrics.c, the text exposition.c;
 * this file ties them to the pool. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager-metrics.h"
#include "manager-balance.h"
#include "manager-view.h"
#include "sockherd/control-protocol.h"
#include "sockherd/address.h"
#include "sockherd/exposition.h"
#include "sockherd/log.h"
#include "sockherd/metrics.h"
#include "sockherd/reuseport.h"
#include "sockherd/sample.h"
#include "sockherd/util.h"

/* while the pool stays uneven, the warning repeats at most this often */
#define IMBALANCE_REPEAT_USEC (10 * 60 * USEC_PER_SEC)

typedef struct WorkerMetrics {
        pid_t pid;
        unsigned slot;
        uint64_t generation;
        const char *role;               /* "serving", "incoming", "retiring" */
        bool fair;                      /* a ready serving worker: counts for fairness */
        bool found;
        uint64_t cpu_usec;              /* cumulative */
        uint64_t cpu_delta_usec;        /* since the previous sample (or its start) */
        double cpu_percent;             /* of one CPU over that time */
        uint64_t rss_bytes;
        unsigned connections;
} WorkerMetrics;

struct ManagerMetrics {
        WorkerMetrics *workers;         /* the latest sample */
        size_t n_workers;
        uint64_t sampled_usec;          /* when, 0: never */
        Fairness cpu, conn;
        ImbalanceDetector detector;
        ImbalanceVerdict verdict;
        char warning[256];              /* "" when even */
        uint64_t warned_usec;
        uint64_t interval_usec;         /* the timer's, 0: no timer */
        int file_error;                 /* the last metrics-file error, logged once */
        Manager *manager;
        sd_event_source *source;        /* the periodic sample, while metrics-interval is set */
};

ManagerMetrics *manager_metrics_new(Manager *m) {
        ManagerView view;
        manager_view(m, &view);
        ManagerMetrics *mm = calloc(1, sizeof(ManagerMetrics));
        if (!mm)
                return NULL;
        mm->manager = m;
        imbalance_init(&mm->detector, NULL);
        return mm;
}

static int collect_workers(Manager *m, WorkerMetrics **ret, size_t *ret_n) {
        ManagerView view;
        manager_view(m, &view);
        size_t n = view.pool->n_retiring, k = 0;
        for (unsigned i = 0; i < view.pool->n_slots; i++)
                n += !!view.pool->slots[i].worker + !!view.pool->slots[i].incoming;
        WorkerMetrics *v = calloc(n ? n : 1, sizeof(WorkerMetrics));
        if (!v)
                return -ENOMEM;
#define ADD(w_, role_, fair_) v[k++] = (WorkerMetrics) { .pid = (w_)->pid, .slot = (w_)->slot, \
                .generation = (w_)->generation, .role = (role_), .fair = (fair_) }
        for (unsigned i = 0; i < view.pool->n_slots; i++) {
                const Slot *sl = &view.pool->slots[i];
                if (sl->worker)
                        ADD(sl->worker, "serving", sl->worker->state == WORKER_READY);
                if (sl->incoming)
                        ADD(sl->incoming, "incoming", false);
        }
        for (size_t i = 0; i < view.pool->n_retiring; i++)
                ADD(view.pool->retiring[i], "retiring", false);
#undef ADD
        *ret = v;
        *ret_n = k;
        return 0;
}

static Worker *find_worker(Manager *m, pid_t pid) {
        ManagerView view;
        manager_view(m, &view);
        return pool_find(view.pool, pid);
}

/* Sample every worker now; the previous sample gives the CPU deltas. */
static int metrics_sample(Manager *m) {
        ManagerView view;
        manager_view(m, &view);
        ManagerMetrics *mm = view.metrics;
        WorkerMetrics *v;
        size_t n;
        uint16_t ports[CONFIG_LISTEN_MAX];
        size_t n_ports = 0;

        if (!mm)
                return -ENOMEM;
        int r = collect_workers(m, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < view.sockets->n && n_ports < ELEMENTSOF(ports); i++) {
                uint16_t port = socket_tcp_port(view.sockets->sockets[i].fd);
                bool dup = false;
                for (size_t j = 0; j < n_ports; j++)
                        dup = dup || ports[j] == port;
                if (port && !dup)
                        ports[n_ports++] = port;
        }
        _cleanup_free_ SampleWorker *s = calloc(n ? n : 1, sizeof(SampleWorker));
        if (!s) {
                free(v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                s[i].pgid = v[i].pid;
        r = sample_workers(s, n, ports, n_ports);
        if (r < 0) {
                free(v);
                return r;
        }

        uint64_t now = manager_now_usec();
        _cleanup_free_ double *cpu = calloc(n ? n : 1, sizeof(double));
        _cleanup_free_ double *conn = calloc(n ? n : 1, sizeof(double));
        if (!cpu || !conn) {
                free(v);
                return -ENOMEM;
        }
        size_t n_fair = 0;
        for (size_t i = 0; i < n; i++) {
                WorkerMetrics *w = &v[i];
                w->found = s[i].found;
                w->cpu_usec = s[i].cpu_usec;
                w->rss_bytes = s[i].rss_bytes;
                w->connections = s[i].connections;

                const WorkerMetrics *prev = NULL;
                for (size_t j = 0; j < mm->n_workers; j++)
                        if (mm->workers[j].pid == w->pid)
                                prev = &mm->workers[j];
                uint64_t since;
                if (prev && w->cpu_usec >= prev->cpu_usec) {
                        w->cpu_delta_usec = w->cpu_usec - prev->cpu_usec;
                        since = mm->sampled_usec;
                } else {
                        Worker *worker = find_worker(m, w->pid);
                        w->cpu_delta_usec = w->cpu_usec;
                        since = worker ? worker->started_usec : now;
                }
                w->cpu_percent = now > since ? 100.0 * (double) w->cpu_delta_usec / (double) (now - since) : 0;
                if (w->fair) {
                        cpu[n_fair] = (double) w->cpu_delta_usec;
                        conn[n_fair] = w->connections;
                        n_fair++;
                }
        }
        fairness_compute(cpu, n_fair, &mm->cpu);
        fairness_compute(conn, n_fair, &mm->conn);
        free(mm->workers);
        mm->workers = v;
        mm->n_workers = n;
        mm->sampled_usec = now;
        return 0;
}

static void metrics_detect(Manager *m, uint64_t interval_usec) {
        ManagerView view;
        manager_view(m, &view);
        ManagerMetrics *mm = view.metrics;
        _cleanup_free_ ImbalanceInput *in = calloc(mm->n_workers ? mm->n_workers : 1, sizeof(ImbalanceInput));
        size_t n = 0;

        if (!in)
                return;
        for (size_t i = 0; i < mm->n_workers; i++)
                if (mm->workers[i].fair && mm->workers[i].found)
                        in[n++] = (ImbalanceInput) {
                                .slot = mm->workers[i].slot, .pid = mm->workers[i].pid,
                                .cpu_usec = mm->workers[i].cpu_delta_usec,
                                .connections = mm->workers[i].connections,
                        };
        /* during a reload the pool is in motion: uneven by design */
        if (strcmp(view.reload.state, "idle") != 0 || view.stopping)
                n = 0;
        if (imbalance_update(&mm->detector, in, n, interval_usec, &mm->verdict) < 0)
                return;
        imbalance_describe(&mm->verdict, mm->warning, sizeof(mm->warning));

        uint64_t now = manager_now_usec();
        if (mm->verdict.firing && mm->warning[0] &&
            (mm->verdict.started || now - mm->warned_usec >= IMBALANCE_REPEAT_USEC)) {
                mm->warned_usec = now;
                log_emit_id(SOCKHERD_MESSAGE_IMBALANCE, LOG_WARNING, -1, 0, 0,
                            "load is unevenly spread across workers: %s (CPU fairness %.2f, connection "
                            "fairness %.2f; 1 is even)%s", mm->warning, mm->cpu.jain, mm->conn.jain,
                            view.balance == BALANCE_SHARED ?
                            "; consider balance = least-connections (or reuseport), which gives each worker its "
                            "own socket and spreads new connections evenly" : "");
        } else if (mm->verdict.ended)
                log_emit_id(SOCKHERD_MESSAGE_IMBALANCE_ENDED, LOG_INFO, -1, 0, 0,
                            "load is evenly spread across workers again");
}

/* ---- the Prometheus text ---- */

int manager_metrics_text(Manager *m, char **ret) {
        ManagerView view;
        manager_view(m, &view);
        ManagerMetrics *mm = view.metrics;
        Exposition e;
        char buf[64], gen[32], address[128];
        const char *pool = view.config->name;

        if (!mm)
                return -ENODATA;
        expo_init(&e);
        expo_family(&e, "sockherd_generation", "gauge", "The committed configuration generation.");
        expo_sample(&e, "sockherd_generation", (const char *[]) { "pool", pool, NULL }, "%" PRIu64, view.generation);
        expo_family(&e, "sockherd_workers_ready", "gauge", "Serving workers that are ready.");
        expo_sample(&e, "sockherd_workers_ready", (const char *[]) { "pool", pool, NULL }, "%u", pool_ready(view.pool));
        expo_family(&e, "sockherd_workers_wanted", "gauge", "Worker slots the pool should have.");
        expo_sample(&e, "sockherd_workers_wanted", (const char *[]) { "pool", pool, NULL }, "%u",
                    view.workers_wanted);

        static const struct {
                const char *name, *type, *help;
        } families[] = {
                { "sockherd_worker_cpu_seconds_total", "counter",
                  "User and system CPU time of the worker's live processes (its process group)." },
                { "sockherd_worker_resident_bytes", "gauge", "Resident memory of the worker's process group." },
                { "sockherd_worker_connections", "gauge",
                  "TCP connections on the pool's ports held by the worker's process group." },
        };
        for (size_t f = 0; f < ELEMENTSOF(families); f++) {
                expo_family(&e, families[f].name, families[f].type, families[f].help);
                for (size_t i = 0; i < mm->n_workers; i++) {
                        const WorkerMetrics *w = &mm->workers[i];
                        char slot[16], pid[16];
                        if (!w->found)
                                continue;
                        snprintf(slot, sizeof(slot), "%u", w->slot);
                        snprintf(pid, sizeof(pid), "%d", (int) w->pid);
                        snprintf(gen, sizeof(gen), "%" PRIu64, w->generation);
                        const char *labels[] = { "pool", pool, "slot", slot, "pid", pid, "generation", gen,
                                                 "role", w->role, NULL };
                        if (f == 0)
                                expo_sample(&e, families[f].name, labels, "%" PRIu64 ".%06" PRIu64,
                                            w->cpu_usec / USEC_PER_SEC, w->cpu_usec % USEC_PER_SEC);
                        else if (f == 1)
                                expo_sample(&e, families[f].name, labels, "%" PRIu64, w->rss_bytes);
                        else
                                expo_sample(&e, families[f].name, labels, "%u", w->connections);
                }
        }
        expo_family(&e, "sockherd_worker_restarts_total", "counter", "Restarts of the slot's worker after it exited.");
        for (unsigned i = 0; i < view.pool->n_slots; i++) {
                snprintf(buf, sizeof(buf), "%u", i);
                expo_sample(&e, "sockherd_worker_restarts_total", (const char *[]) { "pool", pool, "slot", buf, NULL },
                            "%u", view.pool->slots[i].restarts);
        }

        for (int pass = 0; pass < 2; pass++) {
                const char *name = pass == 0 ? "sockherd_listen_queue" : "sockherd_listen_backlog";
                expo_family(&e, name, "gauge", pass == 0 ?
                            "Connections waiting in the listening socket's accept queue." :
                            "The listening socket's accept queue limit.");
                for (size_t i = 0; i < view.sockets->n; i++) {
                        unsigned queued, backlog;
                        const ListenSocket *ls = &view.sockets->sockets[i];
                        if (listen_queue(ls->fd, &queued, &backlog) < 0)
                                continue;
                        if (socket_address_format(ls->fd, address) < 0)
                                snprintf(address, sizeof(address), "?");
                        expo_sample(&e, name, (const char *[]) { "pool", pool, "socket", address,
                                                                 "name", ls->name ?: "", NULL },
                                    "%u", pass == 0 ? queued : backlog);
                }
        }

        if (view.balance != BALANCE_SHARED) {
                /* each slot's own sockets (slot 0 serves on the shared ones) */
                expo_family(&e, "sockherd_slot_listen_queue", "gauge",
                            "Per-slot sockets (balance=reuseport or least-connections): connections waiting on "
                            "the slot's own sockets.");
                for (unsigned i = 0; i < view.pool->n_slots; i++) {
                        snprintf(buf, sizeof(buf), "%u", i);
                        expo_sample(&e, "sockherd_slot_listen_queue",
                                    (const char *[]) { "pool", pool, "slot", buf, NULL }, "%u",
                                    manager_balance_slot_queue(view.balancing, i));
                }
        }
        if (view.balance == BALANCE_LEAST_CONNECTIONS) {
                _cleanup_free_ double *live = calloc(view.pool->n_slots ? view.pool->n_slots : 1, sizeof(double));
                expo_family(&e, "sockherd_balancer_connections", "gauge",
                            "balance=least-connections: live connections the kernel's balancer counts per slot.");
                for (unsigned i = 0; i < view.pool->n_slots; i++) {
                        unsigned n = manager_balance_slot_connections(view.balancing, i);
                        if (live)
                                live[i] = n;
                        snprintf(buf, sizeof(buf), "%u", i);
                        expo_sample(&e, "sockherd_balancer_connections",
                                    (const char *[]) { "pool", pool, "slot", buf, NULL }, "%u", n);
                }
                Fairness f;
                fairness_compute(live, live ? view.pool->n_slots : 0, &f);
                expo_family(&e, "sockherd_balancer_fairness", "gauge",
                            "balance=least-connections: Jain's index of the balancer's per-slot connections "
                            "(1 is even).");
                expo_sample(&e, "sockherd_balancer_fairness", (const char *[]) { "pool", pool, NULL }, "%.4f", f.jain);
                uint64_t unplaced, untracked;
                manager_balance_stats(view.balancing, &unplaced, &untracked);
                expo_family(&e, "sockherd_balancer_unplaced_total", "counter",
                            "balance=least-connections: new connections no slot could take (left to the kernel).");
                expo_sample(&e, "sockherd_balancer_unplaced_total", (const char *[]) { "pool", pool, NULL },
                            "%" PRIu64, unplaced);
                expo_family(&e, "sockherd_balancer_untracked_total", "counter",
                            "balance=least-connections: connections placed but not counted (the table was full).");
                expo_sample(&e, "sockherd_balancer_untracked_total", (const char *[]) { "pool", pool, NULL },
                            "%" PRIu64, untracked);
        }

        expo_family(&e, "sockherd_load_fairness", "gauge",
                    "Jain's fairness index of the ready workers' load: 1 is even, 1/N is one worker takes all.");
        expo_sample(&e, "sockherd_load_fairness", (const char *[]) { "pool", pool, "resource", "cpu", NULL }, "%.4f", mm->cpu.jain);
        expo_sample(&e, "sockherd_load_fairness", (const char *[]) { "pool", pool, "resource", "connections", NULL }, "%.4f", mm->conn.jain);
        expo_family(&e, "sockherd_load_max_share", "gauge",
                    "The busiest ready worker's share of the pool's load (0 to 1).");
        expo_sample(&e, "sockherd_load_max_share", (const char *[]) { "pool", pool, "resource", "cpu", NULL }, "%.4f", mm->cpu.max_share);
        expo_sample(&e, "sockherd_load_max_share", (const char *[]) { "pool", pool, "resource", "connections", NULL }, "%.4f", mm->conn.max_share);
        expo_family(&e, "sockherd_load_imbalanced", "gauge",
                    "1 while the imbalance detector finds a worker persistently starved or overloaded.");
        expo_sample(&e, "sockherd_load_imbalanced", (const char *[]) { "pool", pool, NULL }, "%d", mm->verdict.firing ? 1 : 0);

        return strbuf_steal(&e.text, ret, NULL);
}

/* Write path atomically: a temporary file next to it, then rename. The
 * temporary name does not end in .prom, so the textfile collector never
 * reads a half-written file. */
static int write_atomic(const char *path, const char *text) {
        _cleanup_free_ char *tmp = NULL;
        const char *slash = strrchr(path, '/');
        if (!slash)
                return -EINVAL;
        if (asprintf(&tmp, "%.*s/.%s.XXXXXX", (int) (slash - path), path, slash + 1) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = strlen(text), done = 0;
        int r = 0;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                done += (size_t) n;
        }
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

static void metrics_write_file(Manager *m) {
        ManagerView view;
        manager_view(m, &view);
        ManagerMetrics *mm = view.metrics;
        _cleanup_free_ char *text = NULL;
        const char *path = view.config->metrics_file;

        if (!path)
                return;
        int r = manager_metrics_text(m, &text);
        if (r >= 0)
                r = write_atomic(path, text);
        if (r < 0 && r != mm->file_error)
                log_warning_errno(r, "cannot write the metrics file %s: %m", path);
        else if (r >= 0 && mm->file_error < 0)
                log_info("metrics file %s written again", path);
        mm->file_error = r < 0 ? r : 0;
}

static int on_metrics_tick(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        ManagerView view;
        manager_view(m, &view);
        uint64_t last = view.metrics ? view.metrics->sampled_usec : 0;

        int r = metrics_sample(m);
        manager_balance_check_backlogs(view.balancing);
        if (r < 0) {
                if (view.metrics && view.metrics->file_error != r)
                        log_warning_errno(r, "cannot sample the workers: %m");
        } else {
                uint64_t interval = last ? view.metrics->sampled_usec - last : view.config->metrics_interval_usec;
                metrics_detect(m, interval);
                metrics_write_file(m);
        }
        (void) sd_event_source_set_time_relative(s, view.config->metrics_interval_usec);
        return 0;
}

void manager_metrics_update(Manager *m) {
        ManagerView view;
        manager_view(m, &view);
        uint64_t interval = view.config->metrics_interval_usec;

        if (!interval) {
                view.metrics->source = sd_event_source_disable_unref(view.metrics->source);
                if (view.metrics) {
                        view.metrics->interval_usec = 0;
                        /* no detector without periodic samples */
                        imbalance_done(&view.metrics->detector);
                        imbalance_init(&view.metrics->detector, NULL);
                        view.metrics->verdict = (ImbalanceVerdict) {};
                        view.metrics->warning[0] = '\0';
                }
                return;
        }
        if (!view.metrics) {
                log_error("out of memory: no metrics");
                return;
        }
        if (view.metrics->source && view.metrics->interval_usec == interval)
                return;
        view.metrics->interval_usec = interval;
        if (view.metrics->source) {
                (void) sd_event_source_set_time_relative(view.metrics->source, interval);
                return;
        }
        int r = sd_event_add_time_relative(view.event, &view.metrics->source, CLOCK_MONOTONIC, interval,
                                           interval / 20, on_metrics_tick, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(view.metrics->source, SD_EVENT_ON);
        if (r < 0)
                log_error_errno(r, "cannot start the metrics timer: %m");
}

/* A sample costs a walk over /proc and a sock_diag dump of every TCP
 * socket of the host, TIME_WAIT ones included: tens of milliseconds of
 * kernel time on a host with 100,000 of them (seen: 60 ms). Control
 * requests that come more often than this share one sample. */
#define METRICS_ON_DEMAND_MAX_AGE_USEC (1 * USEC_PER_SEC)

int manager_metrics_refresh(Manager *m) {
        ManagerView view;
        manager_view(m, &view);
        /* the periodic sample is fresh enough; without one, sample now,
         * unless a sample taken for an earlier request is recent */
        if (view.metrics && view.metrics->sampled_usec &&
            (view.metrics->source || manager_now_usec() - view.metrics->sampled_usec < METRICS_ON_DEMAND_MAX_AGE_USEC))
                return 0;
        return metrics_sample(m);
}

ManagerMetrics *manager_metrics_free(ManagerMetrics *mm) {
        if (!mm)
                return NULL;
        sd_event_source_disable_unref(mm->source);
        imbalance_done(&mm->detector);
        free(mm->workers);
        free(mm);
        return NULL;
}

void manager_metrics_add_worker(Manager *m, ControlReply *r, const char *prefix, pid_t pid) {
        ManagerView view;
        manager_view(m, &view);
        char key[80];
        const ManagerMetrics *mm = view.metrics;

        for (size_t i = 0; mm && i < mm->n_workers; i++) {
                const WorkerMetrics *w = &mm->workers[i];
                if (w->pid != pid || !w->found)
                        continue;
                snprintf(key, sizeof(key), "%s.cpu_percent", prefix);
                control_reply_add(r, key, "%.1f", w->cpu_percent);
                snprintf(key, sizeof(key), "%s.rss_bytes", prefix);
                control_reply_add(r, key, "%" PRIu64, w->rss_bytes);
                snprintf(key, sizeof(key), "%s.connections", prefix);
                control_reply_add(r, key, "%u", w->connections);
                return;
        }
}

void manager_metrics_add_pool(Manager *m, ControlReply *r) {
        ManagerView view;
        manager_view(m, &view);
        const ManagerMetrics *mm = view.metrics;
        if (!mm)
                return;
        control_reply_add(r, "imbalance.cpu_max_share", "%.3f", mm->cpu.max_share);
        control_reply_add(r, "imbalance.conn_max_share", "%.3f", mm->conn.max_share);
        control_reply_add(r, "imbalance.jain_cpu", "%.3f", mm->cpu.jain);
        control_reply_add(r, "imbalance.jain_conn", "%.3f", mm->conn.jain);
        control_reply_add(r, "imbalance.warning", "%s", mm->warning);
        control_reply_add(r, "metrics.interval_usec", "%" PRIu64, view.config->metrics_interval_usec);
}
