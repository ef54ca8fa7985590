/* The rolling replacement of workers as one transaction (see txn.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/parse.h"
#include "sockherd/txn.h"

/* What each kind does at the end: the only place the kinds differ. */
static const struct {
        bool rolls_back;        /* a failure puts the committed config back on the switched slots */
        bool commits;           /* success makes the transaction's config the committed one */
        bool has_canaries;      /* a canary phase may run first */
        bool replaces;          /* a target's new worker replaces one: it starts beside it
                                 * (START) and the slot switches when it is ready; else the
                                 * slot's own worker starts (SPAWN) and nothing waits */
        bool queues;            /* asked for while another runs, it waits (else: busy) */
} kind_policy[_TXN_KIND_MAX] = {
        [TXN_RELOAD]  = { .rolls_back = true,  .commits = true,  .has_canaries = true,  .replaces = true,
                          .queues = true },
        [TXN_RESTART] = { .rolls_back = false, .commits = false, .has_canaries = false, .replaces = true },
        [TXN_SCALE]   = { .rolls_back = false, .commits = false, .has_canaries = false, .replaces = false },
};

int txn_init(Txn *t, TxnKind kind, const bool *targets, unsigned n_from, unsigned n_to, unsigned batch,
             unsigned canary) {
        unsigned n = n_from > n_to ? n_from : n_to;

        if ((unsigned) kind >= _TXN_KIND_MAX)
                return -EINVAL;
        *t = (Txn) {
                .kind = kind, .phase = TXN_PHASE_IDLE, .n_slots = n, .n_from = n_from, .n_to = n_to,
                .batch = batch ? batch : 1,
                /* every slot can take a FAIL, an ABANDON and a START in one step */
                .max_actions = 3 * (size_t) n + 8,
        };
        t->slots = calloc(n ? n : 1, sizeof(TxnSlot));
        t->actions = calloc(t->max_actions, sizeof(TxnAction));
        if (!t->slots || !t->actions) {
                txn_done(t);
                return -ENOMEM;
        }
        unsigned canaries = kind_policy[kind].has_canaries ? canary : 0;
        for (unsigned i = 0; i < n; i++) {
                t->slots[i] = targets[i] ? TXN_SLOT_WAITING : TXN_SLOT_UNTOUCHED;
                if (targets[i] && canaries > 0) {
                        canaries--;
                        t->canary_end = i + 1;
                }
        }
        return 0;
}

void txn_done(Txn *t) {
        free(t->slots);
        free(t->actions);
        *t = (Txn) {};
}

static void emit(Txn *t, TxnActionType type, unsigned slot, TxnFailure reason) {
        /* max_actions bounds what one step can emit (see txn_init) */
        if (t->n_actions < t->max_actions)
                t->actions[t->n_actions++] = (TxnAction) { .type = type, .slot = slot, .reason = reason };
}

unsigned txn_count(const Txn *t, TxnSlot s) {
        unsigned n = 0;
        for (unsigned i = 0; i < t->n_slots; i++)
                n += t->slots[i] == s;
        return n;
}

bool txn_is_canary(const Txn *t, unsigned slot) {
        return slot < t->canary_end && t->slots[slot] != TXN_SLOT_UNTOUCHED;
}

static void finish(Txn *t, TxnResult result) {
        t->phase = TXN_PHASE_DONE;
        t->result = result;
        emit(t, TXN_ACTION_FINISH, 0, TXN_FAILURE_NONE);
}

/* May slot i start a new worker in the current phase? */
static bool startable(const Txn *t, unsigned i) {
        if (t->phase == TXN_PHASE_ROLLING_BACK)
                return t->slots[i] == TXN_SLOT_RESTORE_WAITING;
        if (t->slots[i] != TXN_SLOT_WAITING)
                return false;
        return t->phase == TXN_PHASE_ROLLING || (t->phase == TXN_PHASE_CANARY && i < t->canary_end);
}

/* Start what the batch has room for, then see whether the phase is over. */
static void advance(Txn *t) {
        bool back = t->phase == TXN_PHASE_ROLLING_BACK;

        for (unsigned i = 0; i < t->n_slots; i++) {
                if (!startable(t, i))
                        continue;
                if (!back && !kind_policy[t->kind].replaces) {
                        /* nothing to replace: done as soon as it is started */
                        t->slots[i] = TXN_SLOT_SWITCHED;
                        emit(t, TXN_ACTION_SPAWN, i, TXN_FAILURE_NONE);
                        continue;
                }
                if (t->starting >= t->batch)
                        break;
                t->slots[i] = back ? TXN_SLOT_RESTORING : TXN_SLOT_STARTING;
                t->starting++;
                emit(t, back ? TXN_ACTION_START_OLD : TXN_ACTION_START, i, TXN_FAILURE_NONE);
        }
        if (t->starting > 0)
                return;
        for (unsigned i = 0; i < t->n_slots; i++)
                if (startable(t, i))
                        return;

        switch (t->phase) {
        case TXN_PHASE_CANARY:
                t->phase = TXN_PHASE_CANARY_WATCH;
                emit(t, TXN_ACTION_CANARY_TIMER, 0, TXN_FAILURE_NONE);
                return;
        case TXN_PHASE_ROLLING:
                if (t->n_to < t->n_slots)
                        emit(t, TXN_ACTION_SHRINK, t->n_to, TXN_FAILURE_NONE);
                if (kind_policy[t->kind].commits)
                        emit(t, TXN_ACTION_COMMIT, 0, TXN_FAILURE_NONE);
                finish(t, TXN_RESULT_COMMITTED);
                return;
        case TXN_PHASE_ROLLING_BACK:
                finish(t, TXN_RESULT_ROLLED_BACK);
                return;
        default:
                return;
        }
}

/* A new worker failed, or a canary went: stop the new workers not serving
 * yet, then roll back or end as the kind says. */
static void fail(Txn *t, unsigned slot, TxnFailure reason) {
        if (t->failure == TXN_FAILURE_NONE)
                t->failure = reason;
        emit(t, TXN_ACTION_FAIL, slot, reason);
        for (unsigned i = 0; i < t->n_slots; i++) {
                if (t->slots[i] == TXN_SLOT_STARTING || t->slots[i] == TXN_SLOT_RESTORING) {
                        t->slots[i] = t->slots[i] == TXN_SLOT_STARTING ? TXN_SLOT_ABANDONED : TXN_SLOT_SWITCHED;
                        emit(t, TXN_ACTION_ABANDON, i, TXN_FAILURE_NONE);
                } else if (t->slots[i] == TXN_SLOT_WAITING)
                        t->slots[i] = TXN_SLOT_UNTOUCHED;
        }
        t->starting = 0;

        if (reason == TXN_FAILURE_ROLLBACK) {
                /* what serves now stays: the slots not restored keep the new config */
                for (unsigned i = 0; i < t->n_slots; i++)
                        if (t->slots[i] == TXN_SLOT_RESTORE_WAITING)
                                t->slots[i] = TXN_SLOT_SWITCHED;
                finish(t, TXN_RESULT_ROLLBACK_FAILED);
                return;
        }
        if (!kind_policy[t->kind].rolls_back) {
                finish(t, TXN_RESULT_FAILED);
                return;
        }

        /* slots only the new config has go; switched ones it shares get the
         * committed config back */
        unsigned restore = 0;
        for (unsigned i = 0; i < t->n_slots; i++) {
                if (i >= t->n_from)
                        t->slots[i] = TXN_SLOT_REMOVED;
                else if (t->slots[i] == TXN_SLOT_SWITCHED) {
                        t->slots[i] = TXN_SLOT_RESTORE_WAITING;
                        restore++;
                }
        }
        if (t->n_from < t->n_slots)
                emit(t, TXN_ACTION_SHRINK, t->n_from, TXN_FAILURE_NONE);
        if (restore == 0) {
                finish(t, TXN_RESULT_FAILED);
                return;
        }
        t->phase = TXN_PHASE_ROLLING_BACK;
        emit(t, TXN_ACTION_ROLLBACK, restore, TXN_FAILURE_NONE);
        advance(t);
}

static bool forward(const Txn *t) {
        return t->phase == TXN_PHASE_CANARY || t->phase == TXN_PHASE_ROLLING;
}

size_t txn_step(Txn *t, TxnEvent event, unsigned slot) {
        t->n_actions = 0;
        if (t->phase == TXN_PHASE_DONE)
                return 0;
        if (event != TXN_EVENT_BEGIN && event != TXN_EVENT_CANARY_OVER && slot >= t->n_slots)
                return 0;

        switch (event) {
        case TXN_EVENT_BEGIN:
                if (t->phase != TXN_PHASE_IDLE)
                        break;
                t->phase = t->canary_end > 0 ? TXN_PHASE_CANARY : TXN_PHASE_ROLLING;
                advance(t);
                break;

        case TXN_EVENT_READY:
                if (forward(t) && t->slots[slot] == TXN_SLOT_STARTING)
                        t->slots[slot] = TXN_SLOT_SWITCHED;
                else if (t->phase == TXN_PHASE_ROLLING_BACK && t->slots[slot] == TXN_SLOT_RESTORING)
                        t->slots[slot] = TXN_SLOT_RESTORED;
                else
                        break;
                t->starting--;
                emit(t, TXN_ACTION_SWITCH, slot, TXN_FAILURE_NONE);
                advance(t);
                break;

        case TXN_EVENT_FAILED:
                if (forward(t) && t->slots[slot] == TXN_SLOT_STARTING)
                        fail(t, slot, TXN_FAILURE_NEW_WORKER);
                else if (t->phase == TXN_PHASE_ROLLING_BACK && t->slots[slot] == TXN_SLOT_RESTORING)
                        fail(t, slot, TXN_FAILURE_ROLLBACK);
                break;

        case TXN_EVENT_EXITED:
                /* a canary must stay up for canary-time; after that, and for
                 * other slots, an exit is the ordinary respawn's business */
                if ((t->phase == TXN_PHASE_CANARY || t->phase == TXN_PHASE_CANARY_WATCH) &&
                    t->slots[slot] == TXN_SLOT_SWITCHED && txn_is_canary(t, slot))
                        fail(t, slot, TXN_FAILURE_CANARY);
                break;

        case TXN_EVENT_CANARY_OVER:
                if (t->phase != TXN_PHASE_CANARY_WATCH)
                        break;
                t->phase = TXN_PHASE_ROLLING;
                advance(t);
                break;

        default:
                break;
        }
        return t->n_actions;
}

bool txn_owns_slot(const Txn *t, unsigned slot) {
        if (slot >= t->n_slots || t->phase == TXN_PHASE_DONE)
                return false;
        return t->slots[slot] == TXN_SLOT_RESTORE_WAITING || t->slots[slot] == TXN_SLOT_RESTORING;
}

void txn_progress(const Txn *t, unsigned *ret_done, unsigned *ret_total) {
        if (t->phase == TXN_PHASE_ROLLING_BACK || t->result == TXN_RESULT_ROLLED_BACK) {
                *ret_done = txn_count(t, TXN_SLOT_RESTORED);
                *ret_total = *ret_done + txn_count(t, TXN_SLOT_RESTORE_WAITING) + txn_count(t, TXN_SLOT_RESTORING);
                return;
        }
        *ret_done = txn_count(t, TXN_SLOT_SWITCHED);
        *ret_total = *ret_done + txn_count(t, TXN_SLOT_WAITING) + txn_count(t, TXN_SLOT_STARTING);
}

static const char *const phase_names[_TXN_PHASE_MAX] = {
        [TXN_PHASE_IDLE] = "idle",
        [TXN_PHASE_CANARY] = "canary",
        [TXN_PHASE_CANARY_WATCH] = "canary-watch",
        [TXN_PHASE_ROLLING] = "rolling",
        [TXN_PHASE_ROLLING_BACK] = "rolling-back",
        [TXN_PHASE_DONE] = "done",
};

static const char *const slot_names[_TXN_SLOT_MAX] = {
        [TXN_SLOT_UNTOUCHED] = "untouched",
        [TXN_SLOT_WAITING] = "waiting",
        [TXN_SLOT_STARTING] = "starting",
        [TXN_SLOT_SWITCHED] = "switched",
        [TXN_SLOT_ABANDONED] = "abandoned",
        [TXN_SLOT_RESTORE_WAITING] = "restore-waiting",
        [TXN_SLOT_RESTORING] = "restoring",
        [TXN_SLOT_RESTORED] = "restored",
        [TXN_SLOT_REMOVED] = "removed",
};

static const char *const event_names[_TXN_EVENT_MAX] = {
        [TXN_EVENT_BEGIN] = "begin",
        [TXN_EVENT_READY] = "ready",
        [TXN_EVENT_FAILED] = "failed",
        [TXN_EVENT_EXITED] = "exited",
        [TXN_EVENT_CANARY_OVER] = "canary-over",
};

static const char *const action_names[_TXN_ACTION_MAX] = {
        [TXN_ACTION_FAIL] = "fail",
        [TXN_ACTION_START] = "start",
        [TXN_ACTION_START_OLD] = "start-old",
        [TXN_ACTION_SPAWN] = "spawn",
        [TXN_ACTION_SWITCH] = "switch",
        [TXN_ACTION_ABANDON] = "abandon",
        [TXN_ACTION_SHRINK] = "shrink",
        [TXN_ACTION_CANARY_TIMER] = "canary-timer",
        [TXN_ACTION_ROLLBACK] = "rollback",
        [TXN_ACTION_COMMIT] = "commit",
        [TXN_ACTION_FINISH] = "finish",
};

#define NAME(table, i) ((unsigned) (i) < sizeof(table) / sizeof((table)[0]) && (table)[i] ? (table)[i] : "?")

const char *txn_phase_to_string(TxnPhase p) { return NAME(phase_names, p); }
const char *txn_slot_to_string(TxnSlot s) { return NAME(slot_names, s); }
const char *txn_event_to_string(TxnEvent e) { return NAME(event_names, e); }
const char *txn_action_to_string(TxnActionType a) { return NAME(action_names, a); }

int reload_batch_parse(const char *s, unsigned *ret_value, bool *ret_percent) {
        size_t n = s ? strlen(s) : 0;
        char buf[16];

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        bool percent = s[n - 1] == '%';
        memcpy(buf, s, n - percent);
        buf[n - percent] = '\0';
        unsigned v;
        int r = parse_uint_range(buf, 1, percent ? 100 : 1024, &v);
        if (r < 0)
                return r;
        *ret_value = v;
        *ret_percent = percent;
        return 0;
}

unsigned reload_batch_resolve(unsigned value, bool percent, unsigned n_slots) {
        unsigned batch = percent ? (n_slots * value + 99) / 100 : value;
        if (batch > n_slots)
                batch = n_slots;
        return batch < 1 ? 1 : batch;
}

ReloadRequest reload_queue_request(ReloadQueue *q) {
        if (q->running) {
                q->pending = true;
                return RELOAD_REQUEST_QUEUED;
        }
        q->running = true;
        return RELOAD_REQUEST_START;
}

TxnAdmission txn_admit(ReloadQueue *q, TxnKind kind) {
        if ((unsigned) kind >= _TXN_KIND_MAX || (q->running && !kind_policy[kind].queues))
                return TXN_ADMIT_BUSY;
        return reload_queue_request(q) == RELOAD_REQUEST_START ? TXN_ADMIT_START : TXN_ADMIT_QUEUED;
}

bool reload_queue_end(ReloadQueue *q) {
        if (q->pending) {
                q->pending = false;
                return true; /* still running: the queued one takes over */
        }
        q->running = false;
        return false;
}
