/* A rolling replacement of workers as a transaction over the pool's slots,
 * kept pure so every path (success, rollback, batching) is unit-tested:
 *
 *   plan: which slots get a new worker ("targets")
 *   run:  start new workers in at most `batch` target slots at a time; when
 *         a new worker is ready, the slot is switched (the manager stops the
 *         slot's old worker) and the next slot starts
 *   end:  every target switched -> commit; any new worker failing -> abort,
 *         and the manager undoes the switched slots
 *
 * The same machine runs a rollback: a plan whose targets are the switched
 * slots and whose config is the old one. */
#pragma once

#include <stdbool.h>

#include "sockherd/txn.h" /* batch and queue */

typedef enum ReloadSlotState {
        RELOAD_SLOT_UNTOUCHED,  /* not part of this transaction */
        RELOAD_SLOT_WAITING,    /* will get a new worker */
        RELOAD_SLOT_STARTING,   /* its new worker is starting */
        RELOAD_SLOT_SWITCHED,   /* its new worker is ready and serves */
        RELOAD_SLOT_ABANDONED,  /* its new worker was stopped by an abort */
} ReloadSlotState;

typedef enum ReloadState {
        RELOAD_RUNNING,
        RELOAD_COMMITTED,       /* every target switched */
        RELOAD_ABORTED,         /* a new worker failed */
} ReloadState;

typedef struct ReloadPlan {
        ReloadSlotState *slots;
        unsigned n_slots;
        unsigned batch;
        unsigned starting;
        ReloadState state;
} ReloadPlan;

/* targets[i] says whether slot i gets a new worker. batch >= 1. */
int reload_plan_init(ReloadPlan *p, const bool *targets, unsigned n_slots, unsigned batch);
void reload_plan_done(ReloadPlan *p);

/* The next slot to start a new worker in, or -1 when the batch is full or
 * no slot is waiting. Marks it STARTING. */
int reload_plan_next(ReloadPlan *p);

/* The new worker of `slot` is ready: the slot is switched. When it was the
 * last one, the plan is committed. */
void reload_plan_ready(ReloadPlan *p, unsigned slot);

/* The new worker of `slot` failed (exited, or missed its ready timeout):
 * the plan is aborted; every STARTING slot becomes ABANDONED (the manager
 * stops those new workers) and no further slot starts. */
void reload_plan_failed(ReloadPlan *p, unsigned slot);

unsigned reload_plan_count(const ReloadPlan *p, ReloadSlotState s);
unsigned reload_plan_targets(const ReloadPlan *p);

