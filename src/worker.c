/* The worker state machine (see worker.h). Every transition is listed in
 * one switch so that the whole life of a worker reads in one screen. */
#include "sockherd/worker.h"
#include "sockherd/util.h"

static WorkerStep stay(WorkerState s) {
        return (WorkerStep) { .state = s };
}

static WorkerStep begin_stop(void) {
        return (WorkerStep) {
                .state = WORKER_STOPPING,
                .actions = WORKER_ACTION_SEND_STOP | WORKER_ACTION_SET_TIMER,
                .timer = WORKER_TIMER_STOP_TIMEOUT,
        };
}

/* It said STOPPING=1: no signal from us, but a deadline. */
static WorkerStep leaving_on_its_own(void) {
        return (WorkerStep) {
                .state = WORKER_STOPPING,
                .actions = WORKER_ACTION_SET_TIMER,
                .timer = WORKER_TIMER_STOP_TIMEOUT,
        };
}

static WorkerStep become_ready(void) {
        return (WorkerStep) {
                .state = WORKER_READY,
                .actions = WORKER_ACTION_BECAME_READY | WORKER_ACTION_SET_TIMER,
                .timer = WORKER_TIMER_NONE,
        };
}

WorkerStep worker_step(WorkerState state, ReadyMode mode, WorkerEvent event) {
        if (event == WORKER_EVENT_EXITED)
                return (WorkerStep) {
                        .state = WORKER_EXITED,
                        .actions = WORKER_ACTION_SET_TIMER,
                        .timer = WORKER_TIMER_NONE,
                };

        switch (state) {
        case WORKER_STARTING:
                switch (event) {
                case WORKER_EVENT_STARTED:
                        if (mode == READY_EXEC)
                                return become_ready();
                        return (WorkerStep) {
                                .state = WORKER_STARTING,
                                .actions = WORKER_ACTION_SET_TIMER,
                                .timer = mode == READY_ALIVE ? WORKER_TIMER_ALIVE : WORKER_TIMER_READY_TIMEOUT,
                        };
                case WORKER_EVENT_NOTIFY_READY:
                        /* READY=1 is the strongest signal in every mode */
                        return become_ready();
                case WORKER_EVENT_TIMER:
                        if (mode == READY_ALIVE)
                                return become_ready();
                        WorkerStep s = begin_stop();
                        s.actions |= WORKER_ACTION_READY_FAILED;
                        return s;
                case WORKER_EVENT_STOP:
                        return begin_stop();
                case WORKER_EVENT_NOTIFY_STOPPING:
                        return leaving_on_its_own();
                default:
                        return stay(state);
                }

        case WORKER_READY:
                switch (event) {
                case WORKER_EVENT_STOP:
                        return begin_stop();
                case WORKER_EVENT_WATCHDOG:
                        return (WorkerStep) {
                                .state = WORKER_STOPPING,
                                .actions = WORKER_ACTION_SEND_ABORT | WORKER_ACTION_SET_TIMER,
                                .timer = WORKER_TIMER_STOP_TIMEOUT,
                        };
                case WORKER_EVENT_NOTIFY_STOPPING:
                        return leaving_on_its_own();
                default:
                        return stay(state);
                }

        case WORKER_STOPPING:
                switch (event) {
                case WORKER_EVENT_TIMER:
                        return (WorkerStep) {
                                .state = WORKER_STOPPING,
                                .actions = WORKER_ACTION_KILL | WORKER_ACTION_SET_TIMER,
                                .timer = WORKER_TIMER_NONE,
                        };
                default:
                        return stay(state);
                }

        case WORKER_EXITED:
                return stay(state);
        }
        return stay(state);
}

uint64_t worker_timer_usec(WorkerTimer t, const Config *c) {
        switch (t) {
        case WORKER_TIMER_ALIVE:         return c->ready_alive_usec;
        case WORKER_TIMER_READY_TIMEOUT: return c->ready_timeout_usec;
        case WORKER_TIMER_STOP_TIMEOUT:  return c->stop_timeout_usec;
        case WORKER_TIMER_NONE:          break;
        }
        return USEC_INFINITY;
}

const char *worker_state_to_string(WorkerState s) {
        switch (s) {
        case WORKER_STARTING: return "starting";
        case WORKER_READY:    return "ready";
        case WORKER_STOPPING: return "stopping";
        case WORKER_EXITED:   return "exited";
        }
        return "?";
}
