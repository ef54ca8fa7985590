/* A rolling replacement of workers as one transaction over the pool's
 * slots, kept pure (no processes, no clock) so every path is unit-tested:
 *
 *   txn_step(&txn, event, slot) -> actions for the manager to carry out
 *
 *   IDLE --BEGIN--> CANARY --all canaries switched--> CANARY_WATCH
 *                     |                                  | CANARY_OVER
 *                     | (canary = 0)                     v
 *                     +------------------------------> ROLLING --all switched--> DONE (committed)
 *
 *   a new worker failing (CANARY, ROLLING), or a canary exiting while
 *   canary-time runs (CANARY, CANARY_WATCH):
 *     kind rolls back (a reload): the switched slots the old config has
 *       -> ROLLING_BACK: each gets an old-config worker, new before old
 *       -> DONE (rolled back; or rollback failed when one of those fails)
 *     kind keeps what serves (a restart, a recycle): -> DONE (failed)
 *
 * A scale is the degenerate case: its new slots get their workers at
 * BEGIN (SPAWN: nothing to wait for), the slots beyond n_to go (SHRINK), and
 * it ends in the same step. A rollback is a phase of the same transaction,
 * and what a kind does on success and failure is a row of one table in
 * txn.c, not branches in the manager. The manager feeds events in the order they happen and carries
 * out the actions in the order given. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum TxnKind {
        TXN_RELOAD,     /* to a new config and generation; a failure rolls the switched slots back */
        TXN_RESTART,    /* the same config and generation, fresh processes (restart, recycle) */
        TXN_SCALE,      /* to another number of slots: each new slot gets a worker at once
                         * (nothing to replace, so nothing waits and nothing rolls back);
                         * the slots beyond n_to go */
        _TXN_KIND_MAX,
} TxnKind;

typedef enum TxnPhase {
        TXN_PHASE_IDLE,         /* made, not begun */
        TXN_PHASE_CANARY,       /* replacing the canary slots */
        TXN_PHASE_CANARY_WATCH, /* the canaries serve; canary-time runs */
        TXN_PHASE_ROLLING,      /* replacing the rest, `batch` at a time */
        TXN_PHASE_ROLLING_BACK, /* the switched slots get the committed config back */
        TXN_PHASE_DONE,         /* see result */
        _TXN_PHASE_MAX,
} TxnPhase;

typedef enum TxnSlot {
        TXN_SLOT_UNTOUCHED,       /* not part of this transaction (or no longer) */
        TXN_SLOT_WAITING,         /* will get a new worker */
        TXN_SLOT_STARTING,        /* its new worker is starting */
        TXN_SLOT_SWITCHED,        /* its new worker is ready and serves */
        TXN_SLOT_ABANDONED,       /* its new worker was stopped by a failure */
        TXN_SLOT_RESTORE_WAITING, /* switched, will get a committed-config worker back */
        TXN_SLOT_RESTORING,       /* that worker is starting */
        TXN_SLOT_RESTORED,        /* that worker serves */
        TXN_SLOT_REMOVED,         /* only the new config had it; a failure removed it */
        _TXN_SLOT_MAX,
} TxnSlot;

typedef enum TxnEvent {
        TXN_EVENT_BEGIN,
        TXN_EVENT_READY,        /* the slot's starting worker is ready */
        TXN_EVENT_FAILED,       /* the slot's starting worker failed: it exited, missed its
                                 * ready timeout, or could not be started at all */
        TXN_EVENT_EXITED,       /* the slot's serving worker exited */
        TXN_EVENT_CANARY_OVER,  /* canary-time has passed */
        _TXN_EVENT_MAX,
} TxnEvent;

typedef enum TxnResult {
        TXN_RESULT_NONE,        /* still running */
        TXN_RESULT_COMMITTED,
        TXN_RESULT_FAILED,      /* nothing to roll back: what served before serves */
        TXN_RESULT_ROLLED_BACK,
        TXN_RESULT_ROLLBACK_FAILED,
        _TXN_RESULT_MAX,
} TxnResult;

typedef enum TxnFailure {
        TXN_FAILURE_NONE,
        TXN_FAILURE_NEW_WORKER, /* a new worker was not ready (exited, timed out, not started) */
        TXN_FAILURE_CANARY,     /* a canary exited while canary-time ran */
        TXN_FAILURE_ROLLBACK,   /* a rollback's worker was not ready */
        _TXN_FAILURE_MAX,
} TxnFailure;

typedef enum TxnActionType {
        TXN_ACTION_FAIL,          /* record the failure (reason) of slot's worker: before what follows */
        TXN_ACTION_START,         /* start a worker in slot with the transaction's config */
        TXN_ACTION_START_OLD,     /* start a worker in slot with the committed config (rollback) */
        TXN_ACTION_SPAWN,         /* start the slot's own worker (a new slot: it serves when ready) */
        TXN_ACTION_SWITCH,        /* slot's starting worker serves; the one it replaces retires */
        TXN_ACTION_ABANDON,       /* stop slot's starting worker */
        TXN_ACTION_SHRINK,        /* the slots from `slot` up go */
        TXN_ACTION_CANARY_TIMER,  /* arm canary-time; CANARY_OVER when it passes */
        TXN_ACTION_ROLLBACK,      /* rolling `slot` slots back (for the log) */
        TXN_ACTION_COMMIT,        /* the transaction's config and generation become the committed ones */
        TXN_ACTION_FINISH,        /* the transaction is over: see result; always the last action */
        _TXN_ACTION_MAX,
} TxnActionType;

typedef struct TxnAction {
        TxnActionType type;
        unsigned slot;
        TxnFailure reason;      /* FAIL only */
} TxnAction;

typedef struct Txn {
        TxnKind kind;
        TxnPhase phase;
        TxnResult result;
        TxnFailure failure;     /* the first failure, or NONE */
        TxnSlot *slots;
        unsigned n_slots;       /* the larger of n_from and n_to */
        unsigned n_from;        /* slots before it began */
        unsigned n_to;          /* slots once it commits */
        unsigned batch;         /* new workers starting at once, >= 1 */
        unsigned canary_end;    /* slots below this that are targets are canaries; 0: none */
        unsigned starting;
        TxnAction *actions;     /* the last step's, valid until the next step */
        size_t n_actions;
        size_t max_actions;
} Txn;

/* targets[i] (i < max(n_from, n_to)) says whether slot i gets a new worker;
 * the first `canary` targets are canaries (0: no canary phase). A restart
 * has n_from == n_to. */
int txn_init(Txn *t, TxnKind kind, const bool *targets, unsigned n_from, unsigned n_to, unsigned batch,
             unsigned canary);
void txn_done(Txn *t);

/* Apply one event; the actions to carry out are t->actions[0..return). An
 * event that does not apply (a stale slot, a phase it means nothing in)
 * changes nothing and returns 0. */
size_t txn_step(Txn *t, TxnEvent event, unsigned slot);

/* The slot's worker is the transaction's business: when the slot's serving
 * worker exits, the manager does not respawn it (the transaction puts one
 * there). */
bool txn_owns_slot(const Txn *t, unsigned slot);
bool txn_is_canary(const Txn *t, unsigned slot);

unsigned txn_count(const Txn *t, TxnSlot s);
/* For status: the slots done and the slots to do in the current direction
 * (forward: switched of targets; rolling back: restored of those to restore). */
void txn_progress(const Txn *t, unsigned *ret_done, unsigned *ret_total);

const char *txn_phase_to_string(TxnPhase p);
const char *txn_slot_to_string(TxnSlot s);
const char *txn_event_to_string(TxnEvent e);
const char *txn_action_to_string(TxnActionType a);

/* "25%" of n (at least 1), or a plain number (capped at n). */
int reload_batch_parse(const char *s, unsigned *ret_value, bool *ret_percent);
unsigned reload_batch_resolve(unsigned value, bool percent, unsigned n_slots);

/* Requests for reloads: one transaction runs at a time; reload requests
 * during a run collapse into one that runs after it (it re-reads the config
 * then, so it sees the latest file). */
typedef struct ReloadQueue {
        bool running;
        bool pending;
} ReloadQueue;

typedef enum ReloadRequest {
        RELOAD_REQUEST_START,   /* start one now */
        RELOAD_REQUEST_QUEUED,  /* runs when the current one ends */
} ReloadRequest;

ReloadRequest reload_queue_request(ReloadQueue *q);
/* The running transaction ended: true when a queued reload must start now. */
bool reload_queue_end(ReloadQueue *q);

/* Whether a transaction of this kind may start now: a reload asked for
 * while one runs waits for it (reload_queue_request()); a restart, a
 * recycle or a scale is refused instead (-EBUSY: the caller asks again).
 * Takes the queue (running) when it answers START. */
typedef enum TxnAdmission {
        TXN_ADMIT_START,
        TXN_ADMIT_QUEUED,
        TXN_ADMIT_BUSY,
} TxnAdmission;
TxnAdmission txn_admit(ReloadQueue *q, TxnKind kind);
