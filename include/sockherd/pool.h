/* The pool: slots 0..N-1, each served by at most one worker process at a
 * time, with the slot's respawn backoff. Pure bookkeeping: the manager
 * decides when to fork and kill; the pool answers "who is pid X", "how many
 * are ready". */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "sockherd/backoff.h"
#include "sockherd/notify.h"
#include "sockherd/worker.h"

typedef struct Worker {
        pid_t pid;
        unsigned slot;
        uint64_t generation;
        WorkerState state;
        uint64_t started_usec;          /* CLOCK_MONOTONIC */
        char status[NOTIFY_STATUS_MAX]; /* its own STATUS= text */
        sd_event_source *child_source;  /* owned by the manager's loop */
        sd_event_source *timer_source;
        void *userdata;
} Worker;

typedef struct Slot {
        Worker *worker;                 /* NULL while waiting to be (re)started */
        Backoff backoff;
        unsigned restarts;
        sd_event_source *restart_source;
} Slot;

typedef struct Pool {
        Slot *slots;
        unsigned n_slots;
} Pool;

int pool_init(Pool *p, unsigned n_slots);
/* Frees the slots; the caller has released every worker before. */
void pool_done(Pool *p);

Worker *pool_find(const Pool *p, pid_t pid);
unsigned pool_count(const Pool *p, WorkerState state);
/* Workers that still exist as processes (any state but exited). */
unsigned pool_alive(const Pool *p);
