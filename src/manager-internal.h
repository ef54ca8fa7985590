/* The Manager's insides: its fields, shared by the files that are the
 * manager itself: manager.c (the event loop, workers, transactions),
 * manager-balance.c (its sockets and steering), and manager-state.c (its
 * whole state for a re-exec). The parts that answer the outside or watch
 * from it (manager-control.c, manager-http.c, manager-metrics.c,
 * manager-reexec.c, manager-unit.c) see only manager-view.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/manager.h"
#include "sockherd/pool.h"
#include "sockherd/txn.h"
#include "manager-control.h"
#include "manager-http.h"
#include "manager-metrics.h"
#include "manager-reexec.h"
#include "manager-unit.h"
#include "manager-view.h"
#include "sockherd/state.h"
#include "sockherd/util.h"

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
        ListenSet stored_slots; /* per-slot sockets back from the fd store */
        Balance balance;        /* the mode in effect (never BALANCE_AUTO; see manager-balance.c) */
        char balance_reason[512]; /* why that mode */
        struct Balancer **balancers; /* least-connections: per listening socket, NULL where not TCP */
        sd_event_source *balancer_expire_source;
        bool original_orphaned; /* slot 0 serves on its own socket after a restart: replace it
                                 * onto the listening socket itself once it is ready */
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


/* manager.c */
void manager_update_status(Manager *m);
/* The slots the pool should have: during a reload that adds slots, the
 * count before it until it commits. */
unsigned manager_workers_wanted(const Manager *m);
/* The running transaction, for status and /health. */
void manager_reload_snapshot(const Manager *m, ReloadSnapshot *ret);

/* manager-balance.c */
/* At start: open the slots' sockets and attach. 0, or an exit code. */
int manager_balance_setup(Manager *m);
void manager_balance_free(Manager *m);
/* Re-exec: the mode and the balancers' descriptors, into the state... */
int manager_balance_record(Manager *m, State *s);
/* ...and back (the programs stay attached; nothing is loaded again). */
int manager_balance_restore(Manager *m, const State *s);
/* Slot i > 0 gets its own sibling of each TCP socket (kept in the fd store). */
int manager_slot_open_sockets(Manager *m, unsigned slot);
/* The slot goes: its sockets go to heir (to drain) or are closed. */
void manager_slot_release_sockets(Manager *m, unsigned slot, Worker *heir);
/* Make the kernel's choice follow the pool: call after any change of the
 * slots or of a worker's readiness. */
void manager_steer(Manager *m);
/* least-connections: does a replacement start on sockets of its own? */
bool manager_gives_own_sockets(const Manager *m);
/* least-connections: open the sockets of its own for a worker that will
 * replace slot's worker (one per socket, -1 where none), closed to new
 * connections until it takes over; *ret_fds NULL when the mode does not
 * do this. */
int manager_incoming_open_sockets(Manager *m, unsigned slot, int **ret_fds);
/* w takes over its slot: its own sockets become the slot's and take new
 * connections; old gets the slot's previous sockets to drain. */
void manager_slot_take_own_sockets(Manager *m, unsigned slot, Worker *w, Worker *old);

/* For manager-reexec.c */
Worker *manager_adopt_worker(Manager *m, pid_t pid, unsigned slot, uint64_t generation, WorkerState state,
                             uint64_t started_usec, bool retiring);
void manager_schedule_restart(Manager *m, unsigned slot, uint64_t ran_usec);
/* A retiring worker: drain the sockets it owns (quiet-period), then stop. */
void manager_worker_retire_stop(Manager *m, Worker *w);
