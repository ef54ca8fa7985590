/* How new connections reach the workers (see balancer.h, reuseport.h):
 * the mode in effect, every slot's own sockets, and which of them take
 * new connections. One object, handed the manager's pool and sockets; the
 * manager calls manager_balance_steer() after each change of the pool (a
 * slot added, removed, switched, a worker ready or gone). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "manager-balance.h"
#include "sockherd/balancer.h"
#include "sockherd/exit-status.h"
#include "sockherd/fdstore.h"
#include "sockherd/log.h"
#include "sockherd/privileges.h"
#include "sockherd/reuseport.h"
#include "sockherd/sample.h"
#include "sockherd/util.h"

#define EXPIRE_INTERVAL_USEC (10 * USEC_PER_SEC)

struct ManagerBalance {
        sd_event *event;
        Pool *pool;             /* the manager's */
        ListenSet *sockets;     /* the manager's listening sockets */
        ListenSet stored;       /* per-slot sockets back from the fd store, until taken */
        Balance balance;        /* the mode in effect (never BALANCE_AUTO) */
        char reason[512];       /* why that mode */
        Balancer **balancers;   /* least-connections: per listening socket, NULL where not TCP */
        sd_event_source *expire_source;
        bool original_orphaned; /* slot 0 serves on its own socket after a restart: replace it
                                 * onto the listening socket itself once it is ready */
};

ManagerBalance *manager_balance_new(sd_event *event, Pool *pool, ListenSet *sockets) {
        ManagerBalance *mb = calloc(1, sizeof(ManagerBalance));
        if (!mb)
                return NULL;
        *mb = (ManagerBalance) { .event = event, .pool = pool, .sockets = sockets, .balance = BALANCE_SHARED };
        return mb;
}

void manager_balance_adopt_stored(ManagerBalance *mb, ListenSet *stored) {
        listen_set_clear(&mb->stored);
        mb->stored = *stored;
        *stored = (ListenSet) {};
}

const char *balance_to_string(Balance b) {
        switch (b) {
        case BALANCE_AUTO: return "auto";
        case BALANCE_SHARED: return "shared";
        case BALANCE_REUSEPORT: return "reuseport";
        case BALANCE_LEAST_CONNECTIONS: return "least-connections";
        }
        return "?";
}

Balance manager_balance_mode(const ManagerBalance *mb) {
        return mb->balance;
}

const char *manager_balance_reason(const ManagerBalance *mb) {
        return mb->reason;
}

/* Does every slot have its own sockets? */
static bool balanced(const ManagerBalance *mb) {
        return mb->balance == BALANCE_REUSEPORT || mb->balance == BALANCE_LEAST_CONNECTIONS;
}

static const char *slot_store_name(const ManagerBalance *mb, size_t j, unsigned slot, char buf[static FDSTORE_NAME_MAX]) {
        char address[128] = "?";
        (void) socket_address_format(mb->sockets->sockets[j].fd, address);
        snprintf(buf, FDSTORE_NAME_MAX, "sockherd-slot/%u/%s", slot, address);
        for (char *p = buf; *p; p++)
                if (*p == ':')
                        *p = '_';
        return buf;
}

/* Put fd in the slot's lane (see below). */
static int slot_lane_set_socket(ManagerBalance *mb, size_t j, unsigned slot, int fd);

/* Slot i's lanes in the balancer: 2i and 2i + 1. The slot serves on one;
 * a worker replacing its worker starts on the other, with sockets of its
 * own, so that the old worker stops getting new connections the moment
 * the new one takes over, while both run. */
static unsigned slot_lane(const Slot *sl, unsigned slot, bool other) {
        return 2 * slot + ((sl->lane_flip ^ (other ? 1u : 0u)) & 1u);
}

/* The socket of address j that slot i's worker serves on, or -1. */
static int slot_socket(const ManagerBalance *mb, unsigned i, size_t j) {
        const int *fds = i < mb->pool->n_slots ? mb->pool->slots[i].fds : NULL;
        if (fds && fds[j] >= 0)
                return fds[j];
        return i == 0 ? mb->sockets->sockets[j].fd : -1;
}

/* Slot i > 0 gets a sibling of every TCP listening socket (slot 0 serves
 * on the originals). One that was kept in the fd store is taken back; so
 * is slot 0's own (least-connections gives a replacement in slot 0 a
 * sibling of its own, which then serves the slot). */
int manager_balance_slot_open(ManagerBalance *mb, unsigned slot, unsigned backlog) {
        Slot *sl = &mb->pool->slots[slot];
        char name[FDSTORE_NAME_MAX], address[128];

        if (!balanced(mb) || sl->fds)
                return 0;
        if (slot == 0) {
                if (mb->balance != BALANCE_LEAST_CONNECTIONS)
                        return 0;
                for (size_t j = 0; j < mb->sockets->n; j++) {
                        int fd = listen_set_take_named(&mb->stored, slot_store_name(mb, j, 0, name));
                        if (fd < 0)
                                continue;
                        if (!sl->fds) {
                                sl->fds = malloc(mb->sockets->n * sizeof(int));
                                if (!sl->fds) {
                                        safe_close(fd);
                                        return -ENOMEM;
                                }
                                for (size_t k = 0; k < mb->sockets->n; k++)
                                        sl->fds[k] = -1;
                        }
                        sl->fds[j] = fd;
                }
                return 0;
        }
        int *fds = malloc((mb->sockets->n ? mb->sockets->n : 1) * sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (size_t j = 0; j < mb->sockets->n; j++)
                fds[j] = -1;
        sl->fds = fds;

        for (size_t j = 0; j < mb->sockets->n; j++) {
                int base = mb->sockets->sockets[j].fd;
                if (!reuseport_applies(base))
                        continue;
                slot_store_name(mb, j, slot, name);
                int fd = listen_set_take_named(&mb->stored, name);
                if (fd < 0) {
                        fd = reuseport_sibling(base, backlog);
                        if (fd < 0)
                                return log_error_errno(fd, "slot %u: cannot open a reuseport socket next to %s: %m",
                                                       slot, socket_address_format(base, address) >= 0 ? address : "?");
                        int r = fdstore_store(fd, name);
                        if (r < 0)
                                log_warning_errno(r, "cannot keep %s in the fd store: %m", name);
                }
                fds[j] = fd;
                if (mb->balancers && mb->balancers[j]) {
                        int r = slot_lane_set_socket(mb, j, slot, fd);
                        if (r < 0)
                                return log_error_errno(r, "slot %u: cannot give the balancer its socket: %m", slot);
                }
        }
        return 0;
}

/* The slot goes away: its sockets go with heir (closed when it exits, after
 * it drained them), or are closed now. */
void manager_balance_slot_release(ManagerBalance *mb, unsigned slot, Worker *heir) {
        Slot *sl = &mb->pool->slots[slot];
        char name[FDSTORE_NAME_MAX];

        if (!sl->fds)
                return;
        for (size_t j = 0; j < mb->sockets->n; j++) {
                if (sl->fds[j] < 0)
                        continue;
                (void) fdstore_remove(slot_store_name(mb, j, slot, name));
                (void) worker_own_fd(heir, sl->fds[j]);
        }
        free(sl->fds);
        sl->fds = NULL;
}

unsigned manager_balance_slot_queue(const ManagerBalance *mb, unsigned i) {
        unsigned total = 0;

        for (size_t j = 0; j < mb->sockets->n; j++) {
                unsigned queued, backlog;
                int fd = slot_socket(mb, i, j);
                if (fd >= 0 && listen_queue(fd, &queued, &backlog) >= 0)
                        total += queued;
        }
        return total;
}

unsigned manager_balance_slot_connections(const ManagerBalance *mb, unsigned i) {
        unsigned total = 0;
        for (size_t j = 0; mb->balancers && j < mb->sockets->n; j++)
                if (mb->balancers[j])
                        total += balancer_live(mb->balancers[j], slot_lane(&mb->pool->slots[i], i, false));
        return total;
}

void manager_balance_stats(const ManagerBalance *mb, uint64_t *ret_unplaced, uint64_t *ret_untracked) {
        *ret_unplaced = *ret_untracked = 0;
        for (size_t j = 0; mb->balancers && j < mb->sockets->n; j++) {
                uint64_t a, b;
                if (!mb->balancers[j])
                        continue;
                balancer_stats(mb->balancers[j], &a, &b);
                *ret_unplaced += a;
                *ret_untracked += b;
        }
}

static bool gives_own_sockets(const ManagerBalance *mb) {
        return mb->balance == BALANCE_LEAST_CONNECTIONS && mb->balancers;
}

int manager_balance_incoming_open(ManagerBalance *mb, unsigned slot, unsigned backlog, int **ret_fds) {
        const Slot *sl = &mb->pool->slots[slot];
        char address[128];

        *ret_fds = NULL;
        if (!gives_own_sockets(mb))
                return 0;
        _cleanup_free_ int *fds = malloc((mb->sockets->n ? mb->sockets->n : 1) * sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (size_t j = 0; j < mb->sockets->n; j++)
                fds[j] = -1;
        int r = 0;
        for (size_t j = 0; j < mb->sockets->n && r >= 0; j++) {
                if (!mb->balancers[j])
                        continue;
                int base = mb->sockets->sockets[j].fd;
                /* slot 0 goes back to the listening socket itself when it
                 * served on one of its own: the original is never orphaned
                 * for longer than one replacement */
                int fd = slot == 0 && sl->fds ? fcntl(base, F_DUPFD_CLOEXEC, 3) : reuseport_sibling(base, backlog);
                if (slot == 0 && sl->fds && fd < 0)
                        fd = -errno;
                if (fd < 0) {
                        r = log_error_errno(fd, "slot %u: cannot open a socket for the new worker next to %s: %m",
                                            slot, socket_address_format(base, address) >= 0 ? address : "?");
                        break;
                }
                fds[j] = fd;
                /* closed until the worker is ready: nothing queues there before */
                unsigned lane = slot_lane(sl, slot, true);
                balancer_set_state(mb->balancers[j], lane, BALANCER_LANE_CLOSED);
                r = balancer_set_socket(mb->balancers[j], lane, fd);
                if (r == -EBUSY && balancer_find_socket(mb->balancers[j], fd) == (int) lane)
                        r = 0; /* the original, still in the lane it had */
                if (r < 0)
                        log_error_errno(r, "slot %u: cannot give the balancer the new worker's socket: %m", slot);
        }
        if (r < 0) {
                for (size_t j = 0; j < mb->sockets->n; j++)
                        safe_close(fds[j]);
                return r;
        }
        *ret_fds = TAKE_PTR(fds);
        return 0;
}

/* Give old the sockets it serves on to drain: the slot's own, or copies of
 * the shared ones (which stay open for the pool). */
static void hand_over_to_drain(ManagerBalance *mb, Slot *sl, Worker *old) {
        for (size_t j = 0; j < mb->sockets->n; j++) {
                int fd = sl->fds ? sl->fds[j] : -1;
                if (fd < 0 && !sl->fds && mb->balancers[j])
                        fd = fcntl(mb->sockets->sockets[j].fd, F_DUPFD_CLOEXEC, 3);
                if (fd >= 0)
                        (void) worker_own_fd(old, fd);
        }
        free(sl->fds);
        sl->fds = NULL;
}

static bool same_socket(int a, int b) {
        struct stat sa, sb;
        return fstat(a, &sa) >= 0 && fstat(b, &sb) >= 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool manager_balance_slot_take_own(ManagerBalance *mb, unsigned slot, Worker *w, Worker *old) {
        Slot *sl = &mb->pool->slots[slot];
        char name[FDSTORE_NAME_MAX];

        if (!w->own_fds)
                return false;
        hand_over_to_drain(mb, sl, old);
        sl->fds = TAKE_PTR(w->own_fds);
        sl->lane_flip ^= 1;
        bool originals = slot == 0;
        for (size_t j = 0; j < mb->sockets->n; j++)
                if (sl->fds[j] >= 0 && !same_socket(sl->fds[j], mb->sockets->sockets[j].fd))
                        originals = false;
        for (size_t j = 0; j < mb->sockets->n; j++) {
                if (sl->fds[j] < 0)
                        continue;
                /* the fd store keeps the slot's socket under the slot's name;
                 * the listening sockets themselves are stored (or held by a
                 * socket unit) already */
                slot_store_name(mb, j, slot, name);
                (void) fdstore_remove(name);
                if (originals)
                        continue;
                int r = fdstore_store(sl->fds[j], name);
                if (r < 0)
                        log_warning_errno(r, "cannot keep %s in the fd store: %m", name);
        }
        if (originals) {
                /* slot 0 serves on the listening sockets themselves again */
                for (size_t j = 0; j < mb->sockets->n; j++)
                        safe_close(sl->fds[j]);
                free(sl->fds);
                sl->fds = NULL;
        }
        return true;
}

bool manager_balance_take_orphaned(ManagerBalance *mb) {
        bool orphaned = mb->original_orphaned;
        mb->original_orphaned = false;
        return orphaned;
}

int manager_balance_socket_backlog(const ManagerBalance *mb, size_t j, unsigned *ret) {
        unsigned queued, backlog;
        int r = listen_queue(mb->sockets->sockets[j].fd, &queued, &backlog);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < mb->pool->n_slots; i++) {
                const int *fds = mb->pool->slots[i].fds;
                unsigned b;
                if (fds && fds[j] >= 0 && listen_queue(fds[j], &queued, &b) >= 0 && b < backlog)
                        backlog = b;
        }
        *ret = backlog;
        return 0;
}

void manager_balance_check_backlogs(ManagerBalance *mb) {
        char address[128];

        for (size_t i = 0; i < mb->sockets->n; i++) {
                ListenSocket *s = &mb->sockets->sockets[i];
                unsigned backlog;
                if (s->backlog_taken == 0 || manager_balance_socket_backlog(mb, i, &backlog) < 0)
                        continue;
                if (backlog >= s->backlog_taken) {
                        s->backlog_reported = 0;
                        continue;
                }
                if (backlog == s->backlog_reported)
                        continue;
                s->backlog_reported = backlog;
                log_warning("socket %s (%s): its backlog went down from %u to %u after sockherd took it: a worker "
                            "called listen() on it with a smaller backlog (Node's server.listen() does, with 511, "
                            "unless given a backlog); connections beyond %u waiting are refused",
                            socket_address_format(s->fd, address) >= 0 ? address : "?", s->name,
                            s->backlog_taken, backlog, backlog);
        }
}

/* A socket can be in one balancer at a time. One that is in ours already
 * (the orphaned original coming back to slot 0) stays where it is, and
 * the slot serves on that lane. One back from the fd store after a restart
 * can still be in the balancer of the manager before, whose program was
 * just detached: the kernel lets go of it once that program is freed, a
 * few milliseconds later; wait for that, up to a second (at start only:
 * later sockets are new). */
static int slot_lane_set_socket(ManagerBalance *mb, size_t j, unsigned slot, int fd) {
        Slot *sl = &mb->pool->slots[slot];
        Balancer *b = mb->balancers[j];
        int r, lane = -ENOENT;

        for (unsigned tries = 0; tries < 200; tries++) {
                r = balancer_set_socket(b, slot_lane(sl, slot, false), fd);
                if (r != -EBUSY)
                        return r;
                lane = balancer_find_socket(b, fd);
                if (lane != -ENOENT)
                        break;
                (void) usleep(5000);
        }
        if (lane == -ENOENT)
                return -EBUSY;
        if (lane == (int) slot_lane(sl, slot, false))
                return 0;
        if (lane == (int) slot_lane(sl, slot, true)) {
                sl->lane_flip ^= 1;
                return 0;
        }
        /* in another slot's lane: take it out, put it in ours */
        if (lane >= 0 && (r = balancer_set_socket(b, (unsigned) lane, -1)) >= 0)
                r = balancer_set_socket(b, slot_lane(sl, slot, false), fd);
        return lane < 0 ? lane : r;
}

/* What lane should be: serving when its slot's worker is ready, standing
 * by when the slot keeps its socket for a worker that is starting or
 * restarting, closed when it takes no new connections at all (a slot not
 * committed yet or going away; the lane of a replaced worker that drains,
 * or of an incoming one that is not ready yet). */
static unsigned lane_state(const ManagerBalance *mb, unsigned lane, unsigned n_open) {
        unsigned i = lane / 2;
        if (i >= n_open)
                return BALANCER_LANE_CLOSED;
        const Slot *sl = &mb->pool->slots[i];
        if (lane != slot_lane(sl, i, false))
                return BALANCER_LANE_CLOSED;
        return sl->worker && sl->worker->state == WORKER_READY ? BALANCER_LANE_SERVING : BALANCER_LANE_STANDBY;
}

/* New connections go to slots 0..n-1: all slots, except the ones a reload
 * added and has not committed yet. */
void manager_balance_steer(ManagerBalance *mb, unsigned n_open) {
        if (!balanced(mb))
                return;
        unsigned n = mb->pool->n_slots < n_open ? mb->pool->n_slots : n_open;
        for (size_t j = 0; j < mb->sockets->n; j++) {
                Balancer *b = mb->balancers ? mb->balancers[j] : NULL;
                if (b) {
                        for (unsigned lane = 0; lane < 2 * mb->pool->n_slots; lane++)
                                balancer_set_state(b, lane, lane_state(mb, lane, n));
                        balancer_set_lanes(b, 2 * mb->pool->n_slots);
                        continue;
                }
                if (!reuseport_applies(mb->sockets->sockets[j].fd))
                        continue;
                int r = reuseport_steer(mb->sockets->sockets[j].fd, n);
                if (r < 0)
                        log_error_errno(r, "cannot steer connections to %u slots: %m", n);
        }
}

static int on_expire(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        ManagerBalance *mb = userdata;
        uint64_t max_age = balancer_handshake_max_usec();

        for (size_t j = 0; j < mb->sockets->n; j++)
                if (mb->balancers[j])
                        (void) balancer_expire(mb->balancers[j], max_age);
        (void) sd_event_source_set_time_relative(s, EXPIRE_INTERVAL_USEC);
        return 0;
}

static int balancers_start_expiry(ManagerBalance *mb) {
        return sd_event_add_time_relative(mb->event, &mb->expire_source, CLOCK_MONOTONIC,
                                          EXPIRE_INTERVAL_USEC, USEC_PER_SEC, on_expire, mb) < 0 ? -ENOMEM : 0;
}

static void balancers_free(ManagerBalance *mb) {
        for (size_t j = 0; mb->balancers && j < mb->sockets->n; j++)
                balancer_free(mb->balancers[j]);
        free(mb->balancers);
        mb->balancers = NULL;
}

static void set_reason(ManagerBalance *mb, const char *fmt, ...) _printf_(2, 3);
static void set_reason(ManagerBalance *mb, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(mb->reason, sizeof(mb->reason), fmt, ap);
        va_end(ap);
}

/* Choose the mode in effect and, for least-connections, load the programs:
 * at start, as root, before anything else is opened for the slots. Returns
 * 0, or an exit code after saying what to do. */
int manager_balance_prepare(ManagerBalance *mb, const Config *config) {
        Balance want = config->balance;
        char address[128];
        size_t n_tcp = 0;

        mb->balance = BALANCE_SHARED;
        if (want == BALANCE_SHARED) {
                set_reason(mb, "configured");
                return 0;
        }
        for (size_t j = 0; j < mb->sockets->n; j++) {
                int fd = mb->sockets->sockets[j].fd;
                const char *what = socket_address_format(fd, address) >= 0 ? address : mb->sockets->sockets[j].name;
                if (!reuseport_applies(fd)) {
                        if (want != BALANCE_AUTO)
                                log_warning("balance=%s: %s is not a TCP listening socket (unix sockets have no "
                                            "per-worker balancing); its workers share it", balance_to_string(want), what);
                        continue;
                }
                if (reuseport_enabled(fd) == 0) {
                        if (want == BALANCE_AUTO) {
                                set_reason(mb, "the socket %s was passed in without SO_REUSEPORT (ReusePort=yes in its "
                                           ".socket unit enables per-worker sockets)", what);
                                return 0;
                        }
                        log_error("balance=%s: the socket %s was passed in without SO_REUSEPORT; set "
                                  "ReusePort=yes in its .socket unit, or let sockherd bind it with --listen",
                                  balance_to_string(want), what);
                        return EXIT_USAGE;
                }
                n_tcp++;
        }
        if (n_tcp == 0) {
                set_reason(mb, "no TCP listening socket (unix sockets are shared by the workers)");
                return 0;
        }
        if (want == BALANCE_AUTO && !privileges_keep_reason(config, BALANCE_SHARED, geteuid())) {
                /* per-slot sockets would keep the manager root for good */
                set_reason(mb, "user= is set and the manager drops root to it; per-worker sockets would keep it "
                           "root (every slot added opens one); balance = least-connections chooses them anyway");
                return 0;
        }
        if (want == BALANCE_REUSEPORT) {
                mb->balance = BALANCE_REUSEPORT;
                set_reason(mb, "configured");
                return 0;
        }

        mb->balancers = calloc(mb->sockets->n, sizeof(Balancer *));
        if (!mb->balancers)
                return EXIT_RUNTIME;
        int r = 0;
        for (size_t j = 0; j < mb->sockets->n && r >= 0; j++) {
                int fd = mb->sockets->sockets[j].fd;
                if (!reuseport_applies(fd))
                        continue;
                r = balancer_load(socket_tcp_port(fd), &mb->balancers[j]);
        }
        if (r >= 0)
                r = balancers_start_expiry(mb);
        if (r < 0) {
                balancers_free(mb);
                const char *hint = r == -EPERM || r == -EACCES ?
                        "loading BPF programs needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN" :
                        r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP || r == -E2BIG || r == -ENOENT ?
                        "the kernel lacks what it needs: Linux 5.17 or newer with BPF" :
                        "see the error";
                if (want == BALANCE_LEAST_CONNECTIONS) {
                        log_error_errno(r, "balance=least-connections: cannot load the balancing programs: %m (%s); "
                                        "use balance = reuseport or auto", hint);
                        return EXIT_USAGE;
                }
                /* not reuseport: its random choice also queues connections
                 * for a slot whose worker is down until it is back */
                set_reason(mb, "least-connections is not available: cannot load its BPF programs: %s (%s)",
                           strerror(-r), hint);
                return 0;
        }
        mb->balance = BALANCE_LEAST_CONNECTIONS;
        set_reason(mb, want == BALANCE_AUTO ? "the default for TCP: the kernel allows its BPF programs" : "configured");
        return 0;
}

/* Stored slot sockets (and balancers) the pool has no use for now. */
static void drop_stored(ManagerBalance *mb) {
        for (size_t j = 0; j < mb->stored.n; j++) {
                log_info("removing %s from the fd store: the pool no longer uses it", mb->stored.sockets[j].name);
                (void) fdstore_remove(mb->stored.sockets[j].name);
        }
        listen_set_clear(&mb->stored);
}

/* Per-slot sockets at start: open every slot's siblings, give them to the
 * balancer, steer. Returns 0, or an exit code after saying what to do. */
int manager_balance_setup(ManagerBalance *mb, unsigned backlog, unsigned n_open) {
        char address[128];

        log_info("balance=%s (%s)", balance_to_string(mb->balance), mb->reason);
        if (mb->balance == BALANCE_LEAST_CONNECTIONS)
                /* an earlier manager's program (a restart) lets go of its sockets */
                for (size_t j = 0; j < mb->sockets->n; j++)
                        if (mb->balancers[j])
                                (void) setsockopt(mb->sockets->sockets[j].fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF,
                                                  &(int) { 0 }, sizeof(int));
        if (!balanced(mb)) {
                drop_stored(mb);
                /* a balancer a previous manager attached would go on choosing */
                for (size_t j = 0; j < mb->sockets->n; j++)
                        if (reuseport_applies(mb->sockets->sockets[j].fd))
                                (void) setsockopt(mb->sockets->sockets[j].fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF,
                                                  &(int) { 0 }, sizeof(int));
                return 0;
        }
        for (unsigned i = 0; i < mb->pool->n_slots; i++) {
                int r = manager_balance_slot_open(mb, i, backlog);
                if (r == -EADDRINUSE || r == -EACCES || r == -EPERM) {
                        log_error("balance=%s: cannot join the socket's reuseport group: sockets of one group "
                                  "must belong to the same user, and this manager runs as uid %u; run sockherd as root "
                                  "(workers can still drop to user=), or let sockherd bind with --listen and keep its "
                                  "sockets in the fd store", balance_to_string(mb->balance), (unsigned) geteuid());
                        return EXIT_USAGE;
                }
                if (r < 0)
                        return EXIT_RUNTIME;
        }
        drop_stored(mb);
        /* slot 0 took its own socket back from the fd store: the listening
         * socket itself has no worker; what lands on it while the old
         * program lets go (a few milliseconds) is served once slot 0 is
         * replaced onto it, as soon as its worker is ready */
        mb->original_orphaned = mb->balance == BALANCE_LEAST_CONNECTIONS && mb->pool->n_slots > 0 &&
                               mb->pool->slots[0].fds;
        manager_balance_steer(mb, n_open);
        for (size_t j = 0; mb->balancers && j < mb->sockets->n; j++) {
                Balancer *b = mb->balancers[j];
                if (!b)
                        continue;
                int r = slot_lane_set_socket(mb, j, 0, slot_socket(mb, 0, j));
                if (r >= 0)
                        r = balancer_attach(b, mb->sockets->sockets[j].fd);
                if (r < 0) {
                        log_error_errno(r, "balance=least-connections: cannot attach the balancer to %s: %m",
                                        socket_address_format(mb->sockets->sockets[j].fd, address) >= 0 ? address : "?");
                        return EXIT_RUNTIME;
                }
        }
        log_info("balance=%s: %u sockets per address, one per worker", balance_to_string(mb->balance), mb->pool->n_slots);
        return 0;
}

int manager_balance_record(const ManagerBalance *mb, State *s) {
        snprintf(s->balance, sizeof(s->balance), "%s", balance_to_string(mb->balance));
        snprintf(s->balance_reason, sizeof(s->balance_reason), "%s", mb->reason);
        for (size_t j = 0; mb->balancers && j < mb->sockets->n; j++) {
                if (!mb->balancers[j])
                        continue;
                BalancerFds fds;
                balancer_fds(mb->balancers[j], &fds);
                StateBalancer sb = { .index = (unsigned) j,
                                     .fds = { fds.program, fds.link, fds.lanes, fds.chooser, fds.conns, fds.sockets } };
                if (state_add_balancer(s, &sb) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static Balance balance_from_string(const char *s) {
        for (Balance b = BALANCE_SHARED; b <= BALANCE_LEAST_CONNECTIONS; b++)
                if (strcmp(s, balance_to_string(b)) == 0)
                        return b;
        return BALANCE_AUTO;
}

int manager_balance_restore(ManagerBalance *mb, const State *s, Balance configured) {
        mb->balance = balance_from_string(s->balance);
        snprintf(mb->reason, sizeof(mb->reason), "%s", s->balance_reason);
        if (mb->balance == BALANCE_AUTO) {
                /* an older writer: it had per-slot sockets only for reuseport */
                mb->balance = s->n_slot_sockets > 0 || configured == BALANCE_REUSEPORT ?
                        BALANCE_REUSEPORT : BALANCE_SHARED;
                snprintf(mb->reason, sizeof(mb->reason), "kept across a re-exec");
        }
        for (size_t i = 0; i < s->n_balancers; i++)
                for (size_t k = 0; k < STATE_BALANCER_FDS; k++)
                        (void) fcntl(s->balancers[i].fds[k], F_SETFD, FD_CLOEXEC);
        if (s->n_balancers == 0)
                return 0;
        mb->balancers = calloc(mb->sockets->n ? mb->sockets->n : 1, sizeof(Balancer *));
        if (!mb->balancers)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_balancers; i++) {
                const StateBalancer *sb = &s->balancers[i];
                const int *d = sb->fds;
                BalancerFds fds = { d[0], d[1], d[2], d[3], d[4], d[5] };
                int r = sb->index < mb->sockets->n && !mb->balancers[sb->index] ?
                        balancer_adopt(&fds, &mb->balancers[sb->index]) : -EBADMSG;
                if (r < 0) {
                        for (size_t k = 0; k < STATE_BALANCER_FDS; k++)
                                safe_close(d[k]);
                        return r;
                }
        }
        return balancers_start_expiry(mb);
}

ManagerBalance *manager_balance_free(ManagerBalance *mb) {
        if (!mb)
                return NULL;
        sd_event_source_disable_unref(mb->expire_source);
        balancers_free(mb);
        listen_set_clear(&mb->stored);
        free(mb);
        return NULL;
}
