/* The manager's state across a re-exec: what it must know to keep
 * supervising the workers it already has. A versioned text format, one
 * record per line, so that a newer sockherd reads what an older one wrote:
 *
 *     sockherd-state 1
 *     generation 3
 *     ...
 *     worker 0 1234 3 ready 812345678 0 serving\x20on\x201\x20socket(s)
 *     end
 *
 * Strings are escaped as in the control protocol (no spaces, no newlines).
 * Unknown record types from a newer writer are skipped; a record that is
 * malformed fails the whole parse with a message naming the line. Pure:
 * no fds are touched, only their numbers recorded. */
#pragma once

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "sockherd/error.h"
#include "sockherd/worker.h"

#define STATE_VERSION 1
/* The seals on the memfd that carries the state to the new image. */
#define STATE_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define STATE_STRING_MAX 512

typedef struct StateSocket {
        int fd;
        char name[STATE_STRING_MAX];
        char unlink_path[STATE_STRING_MAX];     /* "" when none */
        unsigned backlog_taken;                 /* 0: unknown (or an older writer) */
} StateSocket;

typedef struct StateSlot {
        unsigned restarts;
        unsigned backoff_failures;
        unsigned lane_flip;     /* least-connections: which of its two lanes serves (0 from an older writer) */
} StateSlot;

/* balance=reuseport: socket `index` (LISTEN_FDS order) of slot `slot` */
typedef struct StateSlotSocket {
        unsigned slot;
        unsigned index;
        int fd;
} StateSlotSocket;

/* a retiring worker's socket that it drains before it stops */
typedef struct StateDrainSocket {
        pid_t pid;
        int fd;
} StateDrainSocket;

/* balance=least-connections: socket `index`'s balancer, as descriptors
 * (program, tracepoint link, lanes, chooser, conns, sockets maps) */
#define STATE_BALANCER_FDS 6
typedef struct StateBalancer {
        unsigned index;
        int fds[STATE_BALANCER_FDS];
} StateBalancer;

typedef enum StateRole {
        STATE_ROLE_SERVING,
        STATE_ROLE_RETIRING,
} StateRole;

typedef struct StateWorker {
        StateRole role;
        unsigned slot;
        pid_t pid;
        uint64_t generation;
        WorkerState state;
        uint64_t started_usec;
        uint64_t recycle_at_usec;
        char status[STATE_STRING_MAX];
} StateWorker;

typedef struct State {
        unsigned version;
        uint64_t generation;
        uint64_t last_generation;
        uint64_t requests;
        bool announced_ready;
        bool passed_in;
        char reload_error[STATE_STRING_MAX];
        int notify_fd;
        char notify_address[STATE_STRING_MAX];
        int control_fd;                         /* -1: none */
        char control_path[STATE_STRING_MAX];    /* "" unless we created the file */
        int64_t control_uid;                    /* -1: not recorded (older writer) */
        /* the committed generation's working-directory as configured and as
         * resolved when it began; "" when none (or an older writer) */
        char working_directory[STATE_STRING_MAX];
        char working_directory_resolved[STATE_STRING_MAX];
        int http_fd;                            /* the http-listen socket, -1: none */
        char http_path[STATE_STRING_MAX];       /* "" unless we created a unix socket file */
        StateSocket *sockets;
        size_t n_sockets;
        StateSlot *slots;
        unsigned n_slots;
        StateWorker *workers;
        size_t n_workers;
        StateSlotSocket *slot_sockets;
        size_t n_slot_sockets;
        /* the balancing mode in effect and why; "" from an older writer */
        char balance[32];
        char balance_reason[STATE_STRING_MAX];
        StateBalancer *balancers;
        size_t n_balancers;
        StateDrainSocket *drain_sockets;
        size_t n_drain_sockets;
} State;

int state_write(const State *s, FILE *f);
/* On error, err names the line and what is wrong. */
int state_read(FILE *f, State *ret, ErrorText *err);
void state_done(State *s);

/* Append helpers for building a State; -ENOMEM. */
int state_add_socket(State *s, const StateSocket *sock);
int state_add_balancer(State *s, const StateBalancer *b);
int state_add_drain_socket(State *s, const StateDrainSocket *d);
int state_add_worker(State *s, const StateWorker *w);
int state_add_slot_socket(State *s, const StateSlotSocket *ss);
