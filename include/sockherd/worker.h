/* One worker's life as a state machine, kept apart from processes and
 * timers so it can be tested with plain values:
 *
 *   STARTING --ready--> READY --stop--> STOPPING --exit--> EXITED
 *      |                                   ^
 *      +--ready timeout / stop-------------+
 *
 * worker_step() is a pure function of (state, ready mode, event); it says
 * what the manager must do (send the stop signal, kill, arm a timer) and
 * the manager carries that out. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sockherd/config.h"

typedef enum WorkerState {
        WORKER_STARTING,
        WORKER_READY,
        WORKER_STOPPING,
        WORKER_EXITED,
} WorkerState;

typedef enum WorkerEvent {
        WORKER_EVENT_STARTED,         /* the process was forked */
        WORKER_EVENT_NOTIFY_READY,    /* it sent READY=1 */
        WORKER_EVENT_NOTIFY_STOPPING, /* it sent STOPPING=1: leaving on its own */
        WORKER_EVENT_TIMER,           /* the armed timer fired */
        WORKER_EVENT_STOP,            /* the pool wants it gone */
        WORKER_EVENT_EXITED,          /* the process is gone */
        WORKER_EVENT_WATCHDOG,        /* no WATCHDOG=1 within the watchdog time */
} WorkerEvent;

typedef enum WorkerTimer {
        WORKER_TIMER_NONE,
        WORKER_TIMER_ALIVE,          /* ready mode alive: becomes ready when it fires */
        WORKER_TIMER_READY_TIMEOUT,  /* ready mode notify: gives up when it fires */
        WORKER_TIMER_STOP_TIMEOUT,   /* kills when it fires */
} WorkerTimer;

enum {
        WORKER_ACTION_BECAME_READY = 1 << 0, /* count it as serving */
        WORKER_ACTION_SEND_STOP    = 1 << 1, /* send the configured stop signal */
        WORKER_ACTION_KILL         = 1 << 2, /* SIGKILL its process group */
        WORKER_ACTION_SET_TIMER    = 1 << 3, /* (re)arm the timer as .timer says, or disarm it for NONE */
        WORKER_ACTION_READY_FAILED = 1 << 4, /* it missed its ready timeout */
        WORKER_ACTION_SEND_ABORT   = 1 << 5, /* SIGABRT: a hung worker leaves a core to look at */
};

typedef struct WorkerStep {
        WorkerState state;
        unsigned actions;
        WorkerTimer timer;
} WorkerStep;

WorkerStep worker_step(WorkerState state, ReadyMode mode, WorkerEvent event);

/* The timer's length for the given config. */
uint64_t worker_timer_usec(WorkerTimer t, const Config *c);

const char *worker_state_to_string(WorkerState s);
