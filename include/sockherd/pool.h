/* The pool: slots 0..N-1. A slot has the worker that serves it, during a
 * reload possibly an incoming worker of the next generation, the config
 * and generation a respawn of the slot runs, and its respawn backoff.
 * Workers that no longer belong to a slot (replaced, scaled away) are
 * "retiring" until they exit. Pure bookkeeping: the manager decides when
 * to fork and kill; the pool answers "who is pid X", "how many are ready". */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "sockherd/backoff.h"
#include "sockherd/config.h"
#include "sockherd/notify.h"
#include "sockherd/worker.h"

typedef struct Worker {
        pid_t pid;
        unsigned slot;
        uint64_t generation;
        Config *config;                 /* the snapshot it was started with (a reference) */
        WorkerState state;
        uint64_t started_usec;          /* CLOCK_MONOTONIC */
        char status[NOTIFY_STATUS_MAX]; /* its own STATUS= text */
        sd_event_source *child_source;  /* owned by the manager's loop */
        sd_event_source *timer_source;
        sd_event_source *watchdog_source;
        uint64_t recycle_at_usec;       /* max-lifetime deadline, 0: none */
        int *owned_fds;                 /* its removed slot's sockets, closed when it exits */
        size_t n_owned_fds;
        sd_event_source *drain_source;  /* waits for those sockets' queues to empty */
        uint64_t drain_deadline_usec;
        uint64_t drain_quiet_since_usec; /* when its queues were first seen empty, 0: not yet */
        int *own_fds;                   /* least-connections: an incoming worker's sockets of
                                         * its own (one per socket, -1 where none), which become
                                         * its slot's when it takes over; NULL otherwise */
        void *userdata;
} Worker;

typedef struct Slot {
        Worker *worker;                 /* serves the slot; NULL while waiting to be (re)started */
        Worker *incoming;               /* a reload's new worker until it is ready */
        Config *config;                 /* what a respawn runs (a reference) */
        uint64_t generation;
        Backoff backoff;
        unsigned restarts;
        unsigned exits_before_run;      /* its workers' exits in a row with status 126 or
                                         * 127: the command never ran */
        unsigned exits_before_ready;    /* its workers' exits while no worker of the pool
                                         * had ever been ready (start-up) */
        sd_event_source *restart_source;
        int *fds;                       /* per-slot sockets (reuseport, least-connections): the
                                         * slot's own sockets, in LISTEN_FDS order; -1 where it
                                         * uses the shared one. NULL in shared mode, and for
                                         * slot 0 until a replacement gave it its own. */
        unsigned lane_flip;             /* least-connections: the slot serves on balancer lane
                                         * 2 * slot + lane_flip; a replacement takes the other */
        char last_exit[112];            /* how its last worker ended ("exited with status 1"), or "" */
} Slot;

/* What a slot is doing, for status: its worker's state (starting, ready,
 * stopping), or without a worker "backoff" (a restart is due), "crash-loop"
 * (the same, after BACKOFF_CRASH_LOOP_FAILURES exits in a row) or
 * "stopped" (nothing is due: the pool is stopping). */
const char *slot_state_to_string(const Slot *sl);

typedef struct Pool {
        Slot *slots;
        unsigned n_slots;
        Worker **retiring;
        size_t n_retiring;
} Pool;

/* Grow (new slots are empty) or shrink (the dropped slots must be empty). */
int pool_resize(Pool *p, unsigned n_slots);
/* Frees the slot and list memory and closes slot sockets; the caller has
 * released every worker. */
void pool_done(Pool *p, size_t n_fds);

int pool_retire(Pool *p, Worker *w);
/* Take w off the retiring list; false if it was not on it. */
bool pool_unretire(Pool *p, Worker *w);

Worker *pool_find(const Pool *p, pid_t pid);
/* Serving workers (not incoming, not retiring) that are ready. */
unsigned pool_ready(const Pool *p);
/* Every worker process that has not exited yet, wherever it is. */
unsigned pool_alive(const Pool *p);

/* w takes fd (a socket it drains), to be closed when it exits: see
 * worker_close_owned_fds(). Without w, or out of memory, fd is closed now
 * (-ENOMEM): either way the caller no longer owns it. */
int worker_own_fd(Worker *w, int fd);
void worker_close_owned_fds(Worker *w);
