/* Unit tests for txn.c, the rolling replacement as a pure state machine:
 *
 * - a transition table over every (pool, phase, state of the event's slot,
 *   event), checked complete, each row run from txn_init with real events;
 * - an exhaustive walk of every state the table's pools can reach, which
 *   proves the table's "unreachable" claims, checks that every row's
 *   verdict (acts / ignored) holds in every reachable state and not only
 *   in its row's, and checks invariants of every step;
 * - scenarios (event -> expected actions, step by step, and the end);
 * - stale events, txn_owns_slot, txn_progress, a 64-slot pool;
 * - reload_batch_parse/resolve and the reload queue.
 *
 * Notation: events "B" begin, "R0" ready 0, "F0" failed 0, "X0" exited 0,
 * "C" canary-over; actions as txn_action_to_string() names, with the slot
 * ("start0", "shrink3", "rollback2": the number of slots) and for fail the
 * reason ("fail1:new", ":canary", ":rollback"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/txn.h"
#include "sockherd/util.h"

/* ---- notation ------------------------------------------------------------ */

static const char *reason_name(TxnFailure f) {
        switch (f) {
        case TXN_FAILURE_NONE: return "none";
        case TXN_FAILURE_NEW_WORKER: return "new";
        case TXN_FAILURE_CANARY: return "canary";
        case TXN_FAILURE_ROLLBACK: return "rollback";
        default: return "?";
        }
}

static const char *result_name(TxnResult r) {
        switch (r) {
        case TXN_RESULT_NONE: return "none";
        case TXN_RESULT_COMMITTED: return "committed";
        case TXN_RESULT_FAILED: return "failed";
        case TXN_RESULT_ROLLED_BACK: return "rolled-back";
        case TXN_RESULT_ROLLBACK_FAILED: return "rollback-failed";
        default: return "?";
        }
}

/* The actions of the last step, in the notation above. */
static void render_actions(const Txn *t, size_t n, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && len < size; i++) {
                const TxnAction *a = &t->actions[i];
                const char *sep = i ? " " : "";
                switch (a->type) {
                case TXN_ACTION_CANARY_TIMER:
                case TXN_ACTION_COMMIT:
                case TXN_ACTION_FINISH:
                        /* these carry no slot: a non-zero one would be a bug */
                        if (a->slot != 0)
                                len += snprintf(buf + len, size - len, "%s%s@%u", sep,
                                                txn_action_to_string(a->type), a->slot);
                        else
                                len += snprintf(buf + len, size - len, "%s%s", sep, txn_action_to_string(a->type));
                        break;
                case TXN_ACTION_FAIL:
                        len += snprintf(buf + len, size - len, "%sfail%u:%s", sep, a->slot, reason_name(a->reason));
                        break;
                default:
                        len += snprintf(buf + len, size - len, "%s%s%u", sep, txn_action_to_string(a->type), a->slot);
                        break;
                }
                if (a->type != TXN_ACTION_FAIL && a->reason != TXN_FAILURE_NONE && len < size)
                        len += snprintf(buf + len, size - len, "(reason %s)", reason_name(a->reason));
        }
}

/* "B", "R3", "F0", "X1", "C" */
static void parse_event(const char *s, TxnEvent *ret_event, unsigned *ret_slot) {
        switch (s[0]) {
        case 'B': *ret_event = TXN_EVENT_BEGIN; break;
        case 'R': *ret_event = TXN_EVENT_READY; break;
        case 'F': *ret_event = TXN_EVENT_FAILED; break;
        case 'X': *ret_event = TXN_EVENT_EXITED; break;
        case 'C': *ret_event = TXN_EVENT_CANARY_OVER; break;
        default: fail_msg("bad event '%s'", s);
        }
        *ret_slot = s[1] ? (unsigned) strtoul(s + 1, NULL, 10) : 0;
}

/* Slot states, short: for the expected state of a whole pool ("SW SW U RM"). */
static const char *const slot_codes[_TXN_SLOT_MAX] = {
        [TXN_SLOT_UNTOUCHED] = "U",        [TXN_SLOT_WAITING] = "W",          [TXN_SLOT_STARTING] = "ST",
        [TXN_SLOT_SWITCHED] = "SW",        [TXN_SLOT_ABANDONED] = "AB",       [TXN_SLOT_RESTORE_WAITING] = "RW",
        [TXN_SLOT_RESTORING] = "RS",       [TXN_SLOT_RESTORED] = "RD",        [TXN_SLOT_REMOVED] = "RM",
};

static void render_slots(const Txn *t, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = '\0';
        for (unsigned i = 0; i < t->n_slots && len < size; i++)
                len += snprintf(buf + len, size - len, "%s%s", i ? " " : "", slot_codes[t->slots[i]]);
}

/* "TTFT": slot i is a target when the i-th letter is T */
static void parse_targets(const char *s, bool *targets, size_t max) {
        size_t n = strlen(s);
        assert_true(n <= max);
        for (size_t i = 0; i < n; i++)
                targets[i] = s[i] == 'T';
}

/* ---- pools ---------------------------------------------------------------- */

typedef struct Pool {
        const char *name;
        TxnKind kind;
        const char *targets;
        unsigned n_from, n_to, batch, canary;
} Pool;

static void pool_init(Txn *t, const Pool *p) {
        bool targets[64] = {};
        parse_targets(p->targets, targets, ELEMENTSOF(targets));
        assert_int_equal(txn_init(t, p->kind, targets, p->n_from, p->n_to, p->batch, p->canary), 0);
}

/* Drive t with the events of `events` ("B R0 F1"), each of which must do
 * something (a setup made only of events that apply). */
static void drive(Txn *t, const char *events) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", events);
        for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                TxnEvent e;
                unsigned slot;
                parse_event(tok, &e, &slot);
                if (txn_step(t, e, slot) == 0 && t->phase != TXN_PHASE_DONE)
                        fail_msg("setup '%s': %s did nothing", events, tok);
        }
}

/* What a step may change: compared whole to show an event changed nothing. */
typedef struct Snapshot {
        TxnPhase phase;
        TxnResult result;
        TxnFailure failure;
        unsigned starting, canary_end;
        TxnSlot slots[64];
} Snapshot;

static Snapshot snapshot(const Txn *t) {
        Snapshot s = { .phase = t->phase, .result = t->result, .failure = t->failure, .starting = t->starting,
                       .canary_end = t->canary_end };
        assert_true(t->n_slots <= ELEMENTSOF(s.slots));
        memcpy(s.slots, t->slots, t->n_slots * sizeof(TxnSlot));
        return s;
}

static bool snapshot_equal(const Snapshot *a, const Snapshot *b, unsigned n) {
        return a->phase == b->phase && a->result == b->result && a->failure == b->failure &&
               a->starting == b->starting && a->canary_end == b->canary_end &&
               memcmp(a->slots, b->slots, n * sizeof(TxnSlot)) == 0;
}

/* The pools of the transition table. Small, but each has every kind of slot
 * its kind can have: targets, a slot that is no target (2), and for a
 * reload a slot only the new config has (the last: the pool grows, so a
 * failure removes it). batch 1, so a rollback has slots waiting their turn. */
enum { P_RELOAD, P_CANARY, P_RESTART, _P_TABLE };

static const Pool table_pools[_P_TABLE] = {
        [P_RELOAD] = { "reload", TXN_RELOAD, "TTFT", .n_from = 3, .n_to = 4, .batch = 1, .canary = 0 },
        /* canaries: slots 0 and 1; 3 is a target that is no canary, 4 a new slot */
        [P_CANARY] = { "reload+canary", TXN_RELOAD, "TTFTT", .n_from = 4, .n_to = 5, .batch = 1, .canary = 2 },
        /* a restart asked for canaries gets none: the kind has no canary phase */
        [P_RESTART] = { "restart", TXN_RESTART, "TTFT", .n_from = 4, .n_to = 4, .batch = 1, .canary = 1 },
};

/* ---- the transition table ------------------------------------------------- */

#define S(x) (1u << TXN_SLOT_##x)
#define ALL_STATES ((1u << _TXN_SLOT_MAX) - 1)
#define E(x) (1u << TXN_EVENT_##x)
#define ALL_EVENTS ((1u << _TXN_EVENT_MAX) - 1)
#define SLOT_EVENTS (E(READY) | E(FAILED) | E(EXITED))

typedef enum RowType {
        ROW_STEP,       /* the event acts: expected phase, slot state, actions */
        ROW_IGNORED,    /* returns 0, changes nothing */
        ROW_UNREACHABLE,/* no sequence of events from txn_init gets here: nothing to run */
} RowType;

typedef struct Row {
        RowType type;
        unsigned pool;
        TxnPhase phase;
        unsigned states;        /* of the event's slot */
        unsigned events;
        const char *setup;      /* events from txn_init that reach phase */
        unsigned slot;          /* STEP: the event's slot */
        TxnPhase to_phase;
        TxnSlot to_state;
        TxnResult result;
        const char *actions;
        const char *why;        /* UNREACHABLE */
} Row;

#define STEP(p, ph, st, ev, set, sl, to_ph, to_st, res, act)                                               \
        { .type = ROW_STEP, .pool = p, .phase = TXN_PHASE_##ph, .states = S(st), .events = E(ev),          \
          .setup = set, .slot = sl, .to_phase = TXN_PHASE_##to_ph, .to_state = TXN_SLOT_##to_st,          \
          .result = TXN_RESULT_##res, .actions = act }
/* For each state in the mask: the event is tried on a slot the setup left in
 * that state; a state the setup does not reach must be reachable by no
 * sequence of events at all (the walk checks), and is then put into slot 0
 * by hand to show that the event is ignored there too. */
#define IGNORED(p, ph, sts, evs, set)                                                                      \
        { .type = ROW_IGNORED, .pool = p, .phase = TXN_PHASE_##ph, .states = sts, .events = evs, .setup = set }
#define UNREACHABLE(p, ph, sts, evs, because)                                                              \
        { .type = ROW_UNREACHABLE, .pool = p, .phase = TXN_PHASE_##ph, .states = sts, .events = evs,      \
          .why = because }

/* BEGIN and CANARY_OVER take no slot: the state of "their" slot cannot
 * change what they do, and a state that does not occur in IDLE (BEGIN) or
 * CANARY_WATCH (CANARY_OVER) is only shown to be unreachable, not put there
 * by hand (those events act in that phase whatever slot 0 holds). */
static const Row table[] = {
        /* ---- a reload without canaries: n_from 3, n_to 4, targets 0 1 3 ---- */
        STEP(P_RELOAD, IDLE, WAITING, BEGIN, "", 0, ROLLING, STARTING, NONE, "start0"),
        STEP(P_RELOAD, IDLE, UNTOUCHED, BEGIN, "", 2, ROLLING, UNTOUCHED, NONE, "start0"),
        IGNORED(P_RELOAD, IDLE, ALL_STATES, SLOT_EVENTS | E(CANARY_OVER), ""),
        UNREACHABLE(P_RELOAD, IDLE, ALL_STATES & ~(S(WAITING) | S(UNTOUCHED)), E(BEGIN),
                    "before BEGIN a slot is a target (waiting) or not (untouched)"),
        UNREACHABLE(P_RELOAD, CANARY, ALL_STATES, ALL_EVENTS, "no canaries asked for"),
        UNREACHABLE(P_RELOAD, CANARY_WATCH, ALL_STATES, ALL_EVENTS, "no canaries asked for"),

        /* the next batch starts when a new worker is ready; the last one commits */
        STEP(P_RELOAD, ROLLING, STARTING, READY, "B", 0, ROLLING, SWITCHED, NONE, "switch0 start1"),
        STEP(P_RELOAD, ROLLING, STARTING, READY, "B R0 R1", 3, DONE, SWITCHED, COMMITTED, "switch3 commit finish"),
        /* the first new worker fails: nothing to roll back, the new slot goes */
        STEP(P_RELOAD, ROLLING, STARTING, FAILED, "B", 0, DONE, ABANDONED, FAILED, "fail0:new abandon0 shrink3 finish"),
        STEP(P_RELOAD, ROLLING, STARTING, FAILED, "B R0", 1, ROLLING_BACK, ABANDONED, NONE,
             "fail1:new abandon1 shrink3 rollback1 start-old0"),
        /* the new slot's worker fails: it is removed (not restored), 0 and 1 are */
        STEP(P_RELOAD, ROLLING, STARTING, FAILED, "B R0 R1", 3, ROLLING_BACK, REMOVED, NONE,
             "fail3:new abandon3 shrink3 rollback2 start-old0"),
        IGNORED(P_RELOAD, ROLLING, ALL_STATES & ~S(STARTING), E(READY) | E(FAILED), "B R0"),
        /* an exit in the rolling phase is the ordinary respawn's business */
        IGNORED(P_RELOAD, ROLLING, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0"),

        STEP(P_RELOAD, ROLLING_BACK, RESTORING, READY, "B R0 R1 F3", 0, ROLLING_BACK, RESTORED, NONE,
             "switch0 start-old1"),
        STEP(P_RELOAD, ROLLING_BACK, RESTORING, READY, "B R0 R1 F3 R0", 1, DONE, RESTORED, ROLLED_BACK,
             "switch1 finish"),
        /* a rollback's worker fails: what serves stays, the slot waiting its turn too */
        STEP(P_RELOAD, ROLLING_BACK, RESTORING, FAILED, "B R0 R1 F3", 0, DONE, SWITCHED, ROLLBACK_FAILED,
             "fail0:rollback abandon0 finish"),
        STEP(P_RELOAD, ROLLING_BACK, RESTORING, FAILED, "B R0 R1 F3 R0", 1, DONE, SWITCHED, ROLLBACK_FAILED,
             "fail1:rollback abandon1 finish"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES & ~S(RESTORING), E(READY) | E(FAILED), "B R0 R1 F3"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES & ~S(RESTORING), E(READY) | E(FAILED), "B R0 F1"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES & ~S(RESTORING), E(READY) | E(FAILED), "B R0 R1 F3 R0"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 R1 F3"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 F1"),
        IGNORED(P_RELOAD, ROLLING_BACK, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 R1 F3 R0"),

        /* over: committed, failed, rolled back, rollback failed */
        IGNORED(P_RELOAD, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 R3"),
        IGNORED(P_RELOAD, DONE, ALL_STATES, ALL_EVENTS, "B F0"),
        IGNORED(P_RELOAD, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 F3 R0 R1"),
        IGNORED(P_RELOAD, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 F3 F0"),

        /* ---- a reload with 2 canaries: n_from 4, n_to 5, canaries 0 1, others 3 4 ---- */
        STEP(P_CANARY, IDLE, WAITING, BEGIN, "", 0, CANARY, STARTING, NONE, "start0"),
        STEP(P_CANARY, IDLE, UNTOUCHED, BEGIN, "", 2, CANARY, UNTOUCHED, NONE, "start0"),
        IGNORED(P_CANARY, IDLE, ALL_STATES, SLOT_EVENTS | E(CANARY_OVER), ""),
        UNREACHABLE(P_CANARY, IDLE, ALL_STATES & ~(S(WAITING) | S(UNTOUCHED)), E(BEGIN),
                    "before BEGIN a slot is a target (waiting) or not (untouched)"),

        /* only canaries start, batch or not; the last one arms canary-time */
        STEP(P_CANARY, CANARY, STARTING, READY, "B", 0, CANARY, SWITCHED, NONE, "switch0 start1"),
        STEP(P_CANARY, CANARY, STARTING, READY, "B R0", 1, CANARY_WATCH, SWITCHED, NONE, "switch1 canary-timer"),
        STEP(P_CANARY, CANARY, STARTING, FAILED, "B", 0, DONE, ABANDONED, FAILED, "fail0:new abandon0 shrink4 finish"),
        STEP(P_CANARY, CANARY, STARTING, FAILED, "B R0", 1, ROLLING_BACK, ABANDONED, NONE,
             "fail1:new abandon1 shrink4 rollback1 start-old0"),
        /* a switched canary exits while the other still starts */
        STEP(P_CANARY, CANARY, SWITCHED, EXITED, "B R0", 0, ROLLING_BACK, RESTORING, NONE,
             "fail0:canary abandon1 shrink4 rollback1 start-old0"),
        IGNORED(P_CANARY, CANARY, ALL_STATES & ~S(STARTING), E(READY) | E(FAILED), "B R0"),
        IGNORED(P_CANARY, CANARY, ALL_STATES & ~S(SWITCHED), E(EXITED), "B R0"),
        IGNORED(P_CANARY, CANARY, ALL_STATES, E(BEGIN) | E(CANARY_OVER), "B R0"),

        /* canary-time over: the rest roll, whatever slot the event names */
        STEP(P_CANARY, CANARY_WATCH, WAITING, CANARY_OVER, "B R0 R1", 3, ROLLING, STARTING, NONE, "start3"),
        STEP(P_CANARY, CANARY_WATCH, SWITCHED, CANARY_OVER, "B R0 R1", 0, ROLLING, SWITCHED, NONE, "start3"),
        STEP(P_CANARY, CANARY_WATCH, UNTOUCHED, CANARY_OVER, "B R0 R1", 2, ROLLING, UNTOUCHED, NONE, "start3"),
        UNREACHABLE(P_CANARY, CANARY_WATCH, ALL_STATES & ~(S(WAITING) | S(SWITCHED) | S(UNTOUCHED)),
                    E(CANARY_OVER), "while canary-time runs only canaries were started, and all serve"),
        /* a canary exits while canary-time runs: both canaries go back, 3 and 4 were never touched */
        STEP(P_CANARY, CANARY_WATCH, SWITCHED, EXITED, "B R0 R1", 1, ROLLING_BACK, RESTORE_WAITING, NONE,
             "fail1:canary shrink4 rollback2 start-old0"),
        IGNORED(P_CANARY, CANARY_WATCH, ALL_STATES & ~S(SWITCHED), E(EXITED), "B R0 R1"),
        IGNORED(P_CANARY, CANARY_WATCH, ALL_STATES, E(READY) | E(FAILED) | E(BEGIN), "B R0 R1"),

        STEP(P_CANARY, ROLLING, STARTING, READY, "B R0 R1 C", 3, ROLLING, SWITCHED, NONE, "switch3 start4"),
        STEP(P_CANARY, ROLLING, STARTING, READY, "B R0 R1 C R3", 4, DONE, SWITCHED, COMMITTED,
             "switch4 commit finish"),
        STEP(P_CANARY, ROLLING, STARTING, FAILED, "B R0 R1 C", 3, ROLLING_BACK, ABANDONED, NONE,
             "fail3:new abandon3 shrink4 rollback2 start-old0"),
        STEP(P_CANARY, ROLLING, STARTING, FAILED, "B R0 R1 C R3", 4, ROLLING_BACK, REMOVED, NONE,
             "fail4:new abandon4 shrink4 rollback3 start-old0"),
        IGNORED(P_CANARY, ROLLING, ALL_STATES & ~S(STARTING), E(READY) | E(FAILED), "B R0 R1 C"),
        /* a canary exiting after canary-time is an ordinary exit */
        IGNORED(P_CANARY, ROLLING, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 R1 C"),

        STEP(P_CANARY, ROLLING_BACK, RESTORING, READY, "B R0 R1 C F3", 0, ROLLING_BACK, RESTORED, NONE,
             "switch0 start-old1"),
        STEP(P_CANARY, ROLLING_BACK, RESTORING, READY, "B R0 R1 C F3 R0", 1, DONE, RESTORED, ROLLED_BACK,
             "switch1 finish"),
        STEP(P_CANARY, ROLLING_BACK, RESTORING, FAILED, "B R0 R1 C F3", 0, DONE, SWITCHED, ROLLBACK_FAILED,
             "fail0:rollback abandon0 finish"),
        IGNORED(P_CANARY, ROLLING_BACK, ALL_STATES & ~S(RESTORING), E(READY) | E(FAILED), "B R0 R1 C F3"),
        IGNORED(P_CANARY, ROLLING_BACK, ALL_STATES & ~S(RESTORING), E(READY) | E(FAILED), "B R0 R1 C F3 R0"),
        /* an exit while rolling back is not a canary's any more: the slot's
         * worker is the transaction's business (txn_owns_slot) */
        IGNORED(P_CANARY, ROLLING_BACK, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 R1 C F3"),
        IGNORED(P_CANARY, ROLLING_BACK, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0 R1 C F3 R0"),

        IGNORED(P_CANARY, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 C R3 R4"),
        IGNORED(P_CANARY, DONE, ALL_STATES, ALL_EVENTS, "B F0"),
        IGNORED(P_CANARY, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 C F3 R0 R1"),
        IGNORED(P_CANARY, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 C F3 F0"),

        /* ---- a restart (canary 1 asked for, ignored): 4 slots, targets 0 1 3 ---- */
        STEP(P_RESTART, IDLE, WAITING, BEGIN, "", 0, ROLLING, STARTING, NONE, "start0"),
        STEP(P_RESTART, IDLE, UNTOUCHED, BEGIN, "", 2, ROLLING, UNTOUCHED, NONE, "start0"),
        IGNORED(P_RESTART, IDLE, ALL_STATES, SLOT_EVENTS | E(CANARY_OVER), ""),
        UNREACHABLE(P_RESTART, IDLE, ALL_STATES & ~(S(WAITING) | S(UNTOUCHED)), E(BEGIN),
                    "before BEGIN a slot is a target (waiting) or not (untouched)"),
        UNREACHABLE(P_RESTART, CANARY, ALL_STATES, ALL_EVENTS, "a restart has no canary phase"),
        UNREACHABLE(P_RESTART, CANARY_WATCH, ALL_STATES, ALL_EVENTS, "a restart has no canary phase"),

        STEP(P_RESTART, ROLLING, STARTING, READY, "B", 0, ROLLING, SWITCHED, NONE, "switch0 start1"),
        /* success commits nothing: same config, same generation */
        STEP(P_RESTART, ROLLING, STARTING, READY, "B R0 R1", 3, DONE, SWITCHED, COMMITTED, "switch3 finish"),
        /* failure keeps what serves: no rollback */
        STEP(P_RESTART, ROLLING, STARTING, FAILED, "B", 0, DONE, ABANDONED, FAILED, "fail0:new abandon0 finish"),
        STEP(P_RESTART, ROLLING, STARTING, FAILED, "B R0 R1", 3, DONE, ABANDONED, FAILED, "fail3:new abandon3 finish"),
        IGNORED(P_RESTART, ROLLING, ALL_STATES & ~S(STARTING), E(READY) | E(FAILED), "B R0"),
        IGNORED(P_RESTART, ROLLING, ALL_STATES, E(EXITED) | E(BEGIN) | E(CANARY_OVER), "B R0"),
        UNREACHABLE(P_RESTART, ROLLING_BACK, ALL_STATES, ALL_EVENTS, "a restart does not roll back"),

        IGNORED(P_RESTART, DONE, ALL_STATES, ALL_EVENTS, "B R0 R1 R3"),
        IGNORED(P_RESTART, DONE, ALL_STATES, ALL_EVENTS, "B R0 F1"),
};

static const char *const event_letters[_TXN_EVENT_MAX] = {
        [TXN_EVENT_BEGIN] = "B", [TXN_EVENT_READY] = "R", [TXN_EVENT_FAILED] = "F",
        [TXN_EVENT_EXITED] = "X", [TXN_EVENT_CANARY_OVER] = "C",
};

static void test_table_is_complete(void **state) {
        for (unsigned p = 0; p < _P_TABLE; p++)
                for (unsigned ph = 0; ph < _TXN_PHASE_MAX; ph++)
                        for (unsigned s = 0; s < _TXN_SLOT_MAX; s++)
                                for (unsigned e = 0; e < _TXN_EVENT_MAX; e++) {
                                        unsigned rows = 0;
                                        for (size_t r = 0; r < ELEMENTSOF(table); r++)
                                                if (table[r].pool == p && table[r].phase == ph &&
                                                    (table[r].states & (1u << s)) && (table[r].events & (1u << e)))
                                                        rows++;
                                        if (rows == 0)
                                                fail_msg("%s: %s, slot %s, %s has no row in the table",
                                                         table_pools[p].name, txn_phase_to_string(ph),
                                                         txn_slot_to_string(s), txn_event_to_string(e));
                                }
}

/* ---- every state the table's pools can reach ------------------------------- */

/* A path of events from txn_init; replayed to get the state (no copying of
 * a Txn's insides, no poking). */
typedef struct Path {
        uint8_t len;
        uint8_t event[40];
        uint8_t slot[40];
} Path;

typedef struct Walk {
        /* reach[phase][state]: a slot is in state while the phase is phase */
        bool reach[_TXN_PHASE_MAX][_TXN_SLOT_MAX];
        bool phase_reached[_TXN_PHASE_MAX];
        /* what (phase, state of the slot named, event) did, over all reachable states */
        bool acted[_TXN_PHASE_MAX][_TXN_SLOT_MAX][_TXN_EVENT_MAX];
        bool ignored[_TXN_PHASE_MAX][_TXN_SLOT_MAX][_TXN_EVENT_MAX];
        size_t states, steps;
} Walk;

static uint64_t state_key(const Txn *t) {
        uint64_t k = t->phase | (uint64_t) t->result << 3 | (uint64_t) t->failure << 6 | (uint64_t) t->starting << 8;
        assert_true(t->n_slots <= 8);
        for (unsigned i = 0; i < t->n_slots; i++)
                k |= (uint64_t) t->slots[i] << (16 + 4 * i);
        return k;
}

static void replay(Txn *t, const Pool *p, const Path *path) {
        pool_init(t, p);
        for (unsigned i = 0; i < path->len; i++)
                (void) txn_step(t, path->event[i], path->slot[i]);
}

static bool slot_is_target(const Pool *p, unsigned i) {
        return i < strlen(p->targets) && p->targets[i] == 'T';
}

/* The invariants of one step from `before` (of t, which has taken it). */
static void check_step_invariants(const Pool *p, const Snapshot *before, const Txn *t, size_t n, TxnEvent e,
                                  unsigned slot) {
        char acts[1024];
        render_actions(t, n, acts, sizeof(acts));
#define CHECK(cond, ...)                                                                                           \
        do {                                                                                                       \
                if (!(cond))                                                                                       \
                        fail_msg("%s: %s %s slot %u -> '%s': " #cond, p->name,                                  \
                                 txn_phase_to_string(before->phase), txn_event_to_string(e), slot, acts);         \
        } while (0)

        CHECK(n <= t->max_actions);
        CHECK(n == t->n_actions);
        if (n == 0) {
                Snapshot after = snapshot(t);
                CHECK(snapshot_equal(before, &after, t->n_slots));
        }
        if (before->phase == TXN_PHASE_DONE)
                CHECK(n == 0);
        if (slot >= t->n_slots && e != TXN_EVENT_BEGIN && e != TXN_EVENT_CANARY_OVER)
                CHECK(n == 0);
        /* FINISH exactly when the step ends it, and last */
        bool finished = before->phase != TXN_PHASE_DONE && t->phase == TXN_PHASE_DONE;
        CHECK(finished == (n > 0 && t->actions[n - 1].type == TXN_ACTION_FINISH));
        CHECK((t->phase == TXN_PHASE_DONE) == (t->result != TXN_RESULT_NONE));
        unsigned fails = 0;
        for (size_t i = 0; i < n; i++) {
                const TxnAction *a = &t->actions[i];
                unsigned s = a->slot;
                CHECK(a->type < _TXN_ACTION_MAX);
                CHECK(a->type == TXN_ACTION_FINISH || i + 1 < n || !finished);
                CHECK(a->type != TXN_ACTION_FINISH || i + 1 == n);
                switch (a->type) {
                case TXN_ACTION_FAIL:
                        /* first, once, and for the slot the event named */
                        CHECK(i == 0);
                        CHECK(s == slot);
                        CHECK(a->reason != TXN_FAILURE_NONE);
                        fails++;
                        break;
                case TXN_ACTION_START:
                        CHECK(s < t->n_slots && slot_is_target(p, s));
                        CHECK(before->slots[s] == TXN_SLOT_WAITING && t->slots[s] == TXN_SLOT_STARTING);
                        CHECK(t->phase == TXN_PHASE_CANARY || t->phase == TXN_PHASE_ROLLING);
                        /* while canaries run, only canaries start */
                        CHECK(t->phase != TXN_PHASE_CANARY || s < t->canary_end);
                        break;
                case TXN_ACTION_SPAWN:
                        /* a scale's new slot, at its BEGIN */
                        CHECK(p->kind == TXN_SCALE && e == TXN_EVENT_BEGIN);
                        CHECK(s >= p->n_from && s < p->n_to && slot_is_target(p, s));
                        CHECK(before->slots[s] == TXN_SLOT_WAITING && t->slots[s] == TXN_SLOT_SWITCHED);
                        break;
                case TXN_ACTION_START_OLD:
                        /* only a slot the committed config has, switched in this transaction */
                        CHECK(s < p->n_from && p->kind == TXN_RELOAD);
                        CHECK(t->slots[s] == TXN_SLOT_RESTORING);
                        CHECK(before->slots[s] == TXN_SLOT_SWITCHED || before->slots[s] == TXN_SLOT_RESTORE_WAITING);
                        break;
                case TXN_ACTION_SWITCH:
                        CHECK(s == slot && i == 0);
                        CHECK(before->slots[s] == TXN_SLOT_STARTING || before->slots[s] == TXN_SLOT_RESTORING);
                        break;
                case TXN_ACTION_ABANDON:
                        CHECK(s < t->n_slots);
                        CHECK(before->slots[s] == TXN_SLOT_STARTING || before->slots[s] == TXN_SLOT_RESTORING);
                        break;
                case TXN_ACTION_SHRINK:
                        CHECK(p->kind == TXN_RELOAD || p->kind == TXN_SCALE);
                        CHECK(s == (t->result == TXN_RESULT_COMMITTED ? p->n_to : p->n_from));
                        CHECK(s < t->n_slots);
                        break;
                case TXN_ACTION_ROLLBACK:
                        CHECK(p->kind == TXN_RELOAD && s > 0);
                        CHECK(s == txn_count(t, TXN_SLOT_RESTORE_WAITING) + txn_count(t, TXN_SLOT_RESTORING));
                        break;
                case TXN_ACTION_COMMIT:
                        CHECK(p->kind == TXN_RELOAD && t->result == TXN_RESULT_COMMITTED && i + 2 == n);
                        break;
                case TXN_ACTION_CANARY_TIMER:
                        CHECK(t->phase == TXN_PHASE_CANARY_WATCH && before->phase == TXN_PHASE_CANARY);
                        break;
                case TXN_ACTION_FINISH:
                        CHECK(s == 0);
                        break;
                default:
                        break;
                }
                if (a->type != TXN_ACTION_FAIL)
                        CHECK(a->reason == TXN_FAILURE_NONE);
        }
        CHECK(fails <= 1);
        CHECK(t->starting == txn_count(t, TXN_SLOT_STARTING) + txn_count(t, TXN_SLOT_RESTORING));
        CHECK(t->starting <= t->batch);
        if (t->phase == TXN_PHASE_DONE)
                CHECK(t->starting == 0 && txn_count(t, TXN_SLOT_WAITING) == 0 &&
                      txn_count(t, TXN_SLOT_RESTORE_WAITING) == 0);
        /* the transaction owns exactly the slots waiting for or getting a
         * committed-config worker back */
        for (unsigned i = 0; i <= t->n_slots; i++) {
                bool own = i < t->n_slots && t->phase != TXN_PHASE_DONE &&
                           (t->slots[i] == TXN_SLOT_RESTORE_WAITING || t->slots[i] == TXN_SLOT_RESTORING);
                CHECK(txn_owns_slot(t, i) == own);
        }
        /* a slot no target is never touched; non-canaries wait out the canaries */
        for (unsigned i = 0; i < t->n_slots; i++) {
                if (!slot_is_target(p, i))
                        CHECK(t->slots[i] == TXN_SLOT_UNTOUCHED ||
                              (t->slots[i] == TXN_SLOT_REMOVED && i >= p->n_from));
                if ((t->phase == TXN_PHASE_CANARY || t->phase == TXN_PHASE_CANARY_WATCH) && i >= t->canary_end)
                        CHECK(t->slots[i] == TXN_SLOT_WAITING || t->slots[i] == TXN_SLOT_UNTOUCHED);
                if (t->slots[i] == TXN_SLOT_REMOVED)
                        CHECK(i >= p->n_from);
                if (i >= p->n_from && (t->result == TXN_RESULT_ROLLED_BACK || t->result == TXN_RESULT_ROLLBACK_FAILED ||
                                       (t->result == TXN_RESULT_FAILED && p->kind == TXN_RELOAD)))
                        CHECK(t->slots[i] == TXN_SLOT_REMOVED);
        }
        if (p->kind == TXN_RESTART)
                CHECK(t->phase != TXN_PHASE_ROLLING_BACK && t->phase != TXN_PHASE_CANARY &&
                      t->phase != TXN_PHASE_CANARY_WATCH);
#undef CHECK
}

/* Every state reachable from txn_init, by every event on every slot (and
 * one past the last), breadth first. */
static void walk(const Pool *p, Walk *w) {
        size_t cap = 1 << 16, head = 0, tail = 0;
        Path *queue = calloc(cap, sizeof(Path));
        uint64_t *seen = calloc(cap, sizeof(uint64_t));
        size_t n_seen = 0;
        assert_non_null(queue);
        assert_non_null(seen);
        *w = (Walk) {};

        Txn t;
        pool_init(&t, p);
        seen[n_seen++] = state_key(&t);
        unsigned n_slots = t.n_slots;
        txn_done(&t);
        queue[tail++] = (Path) {};

        while (head < tail) {
                Path path = queue[head++];
                w->states++;
                for (unsigned e = 0; e < _TXN_EVENT_MAX; e++)
                        for (unsigned slot = 0; slot <= n_slots; slot++) {
                                if ((e == TXN_EVENT_BEGIN || e == TXN_EVENT_CANARY_OVER) && slot > 0 && slot < n_slots)
                                        continue; /* slotless: 0 and one out of range are enough */
                                replay(&t, p, &path);
                                Snapshot before = snapshot(&t);
                                for (unsigned i = 0; i < n_slots; i++)
                                        w->reach[t.phase][t.slots[i]] = true;
                                w->phase_reached[t.phase] = true;
                                size_t n = txn_step(&t, e, slot);
                                w->steps++;
                                check_step_invariants(p, &before, &t, n, e, slot);
                                if (slot < n_slots) {
                                        if (n > 0)
                                                w->acted[before.phase][before.slots[slot]][e] = true;
                                        else
                                                w->ignored[before.phase][before.slots[slot]][e] = true;
                                }
                                uint64_t k = state_key(&t);
                                bool known = false;
                                for (size_t i = 0; i < n_seen && !known; i++)
                                        known = seen[i] == k;
                                if (!known) {
                                        assert_true(n_seen < cap && tail < cap && path.len < ELEMENTSOF(path.event));
                                        seen[n_seen++] = k;
                                        Path next = path;
                                        next.event[next.len] = e;
                                        next.slot[next.len] = slot;
                                        next.len++;
                                        queue[tail++] = next;
                                }
                                txn_done(&t);
                        }
        }
        free(queue);
        free(seen);
}

/* Run every row: its setup from txn_init, the event, the expected outcome;
 * then check the table against the walk: a combination the walk reaches is
 * run for real by some row, one it does not is marked unreachable or poked
 * in an IGNORED row, and every row's verdict holds in every reachable state. */
static void test_every_row(void **state) {
        for (unsigned p = 0; p < _P_TABLE; p++) {
                const Pool *pool = &table_pools[p];
                Walk w;
                walk(pool, &w);
                bool real[_TXN_PHASE_MAX][_TXN_SLOT_MAX][_TXN_EVENT_MAX] = {};

                for (size_t r = 0; r < ELEMENTSOF(table); r++) {
                        const Row *row = &table[r];
                        if (row->pool != p)
                                continue;
                        for (unsigned s = 0; s < _TXN_SLOT_MAX; s++)
                                for (unsigned e = 0; e < _TXN_EVENT_MAX; e++) {
                                        if (!(row->states & (1u << s)) || !(row->events & (1u << e)))
                                                continue;
                                        const char *ctx_phase = txn_phase_to_string(row->phase);
                                        /* the row's verdict, in every state the walk reached */
                                        if (row->type == ROW_STEP && w.ignored[row->phase][s][e])
                                                fail_msg("%s: %s, slot %s, %s: a STEP row, but ignored in a reachable state",
                                                         pool->name, ctx_phase, txn_slot_to_string(s), txn_event_to_string(e));
                                        if (row->type == ROW_IGNORED && w.acted[row->phase][s][e])
                                                fail_msg("%s: %s, slot %s, %s: an IGNORED row, but acts in a reachable state",
                                                         pool->name, ctx_phase, txn_slot_to_string(s), txn_event_to_string(e));
                                        if (row->type == ROW_UNREACHABLE) {
                                                if (w.reach[row->phase][s])
                                                        fail_msg("%s: %s with a slot %s is reachable, not '%s'", pool->name,
                                                                 ctx_phase, txn_slot_to_string(s), row->why);
                                                continue;
                                        }

                                        Txn t;
                                        pool_init(&t, pool);
                                        drive(&t, row->setup);
                                        if (t.phase != row->phase)
                                                fail_msg("%s: setup '%s' ends in %s, the row says %s", pool->name,
                                                         row->setup, txn_phase_to_string(t.phase), ctx_phase);
                                        unsigned slot = row->slot;
                                        bool poked = false;
                                        if (row->type == ROW_IGNORED) {
                                                slot = t.n_slots;
                                                for (unsigned i = 0; i < t.n_slots && slot == t.n_slots; i++)
                                                        if (t.slots[i] == s)
                                                                slot = i;
                                                if (slot == t.n_slots) {
                                                        if (w.reach[row->phase][s]) {
                                                                /* reachable: another row's setup must reach it */
                                                                txn_done(&t);
                                                                continue;
                                                        }
                                                        /* unreachable: put it there by hand */
                                                        slot = 0;
                                                        t.slots[0] = s;
                                                        poked = true;
                                                }
                                        } else if (t.slots[slot] != s)
                                                fail_msg("%s: setup '%s' leaves slot %u %s, the row says %s", pool->name,
                                                         row->setup, slot, txn_slot_to_string(t.slots[slot]),
                                                         txn_slot_to_string(s));

                                        Snapshot before = snapshot(&t);
                                        size_t n = txn_step(&t, e, slot);
                                        char got[1024], ctx[256];
                                        render_actions(&t, n, got, sizeof(got));
                                        snprintf(ctx, sizeof(ctx), "%s: '%s' then %s%u (slot %s%s)", pool->name, row->setup,
                                                 event_letters[e], slot, txn_slot_to_string(s), poked ? ", put there" : "");
                                        if (row->type == ROW_IGNORED) {
                                                Snapshot after = snapshot(&t);
                                                if (n != 0 || !snapshot_equal(&before, &after, t.n_slots))
                                                        fail_msg("%s: expected to be ignored, got '%s', phase %s", ctx, got,
                                                                 txn_phase_to_string(t.phase));
                                        } else {
                                                if (strcmp(got, row->actions) != 0)
                                                        fail_msg("%s: actions '%s', expected '%s'", ctx, got, row->actions);
                                                if (t.phase != row->to_phase || t.slots[slot] != row->to_state ||
                                                    t.result != row->result)
                                                        fail_msg("%s: -> %s, slot %s, result %s; expected %s, %s, %s", ctx,
                                                                 txn_phase_to_string(t.phase),
                                                                 txn_slot_to_string(t.slots[slot]), result_name(t.result),
                                                                 txn_phase_to_string(row->to_phase),
                                                                 txn_slot_to_string(row->to_state), result_name(row->result));
                                        }
                                        if (!poked)
                                                real[row->phase][s][e] = true;
                                        txn_done(&t);
                                }
                }

                /* every reachable combination was run for real */
                for (unsigned ph = 0; ph < _TXN_PHASE_MAX; ph++)
                        for (unsigned s = 0; s < _TXN_SLOT_MAX; s++)
                                for (unsigned e = 0; e < _TXN_EVENT_MAX; e++)
                                        if (w.reach[ph][s] && !real[ph][s][e])
                                                fail_msg("%s: %s with a slot %s is reachable, but no row's setup "
                                                         "reaches it to try %s",
                                                         pool->name, txn_phase_to_string(ph), txn_slot_to_string(s),
                                                         txn_event_to_string(e));
        }
}

/* The invariants of check_step_invariants over every reachable state of
 * more pool shapes than the table's: batches, shrinking, canaries covering
 * every target or more, no targets at all. */
static void test_invariants_of_every_reachable_state(void **state) {
        static const Pool pools[] = {
                { "reload batch 2", TXN_RELOAD, "TTTT", 4, 4, 2, 0 },
                { "reload shrink 4->2", TXN_RELOAD, "TTFF", 4, 2, 1, 0 },
                { "reload shrink 4->2 batch 2", TXN_RELOAD, "TFFF", 4, 2, 2, 0 },
                { "reload grow 2->4 batch 2", TXN_RELOAD, "TTTT", 2, 4, 2, 0 },
                { "reload grow 1->3, canary 1", TXN_RELOAD, "FTT", 1, 3, 2, 1 },
                { "reload canary 2 batch 3", TXN_RELOAD, "TTTTT", 5, 5, 3, 2 },
                { "reload canary >= targets", TXN_RELOAD, "TFT", 3, 3, 1, 5 },
                { "reload no targets", TXN_RELOAD, "FF", 2, 2, 1, 1 },
                { "reload no targets, shrink", TXN_RELOAD, "FFF", 3, 2, 1, 0 },
                { "restart batch 2", TXN_RESTART, "TTTT", 4, 4, 2, 2 },
                { "restart no targets", TXN_RESTART, "FF", 2, 2, 1, 0 },
                { "scale up 2->5", TXN_SCALE, "FFTTT", 2, 5, 1, 0 },
                { "scale down 5->2", TXN_SCALE, "FFFFF", 5, 2, 1, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(pools); i++) {
                Walk w;
                walk(&pools[i], &w);
                print_message("%s: %zu states, %zu steps\n", pools[i].name, w.states, w.steps);
                assert_true(w.phase_reached[TXN_PHASE_DONE]);
        }
        for (size_t i = 0; i < _P_TABLE; i++) {
                Walk w;
                walk(&table_pools[i], &w);
                print_message("%s: %zu states, %zu steps\n", table_pools[i].name, w.states, w.steps);
                assert_true(w.states >= 8);
        }
}

/* ---- scenarios ---------------------------------------------------------- */

typedef struct Step {
        const char *event;
        const char *actions;
} Step;

typedef struct Scenario {
        const char *name;
        Pool pool;
        Step steps[20];
        TxnResult result;
        TxnFailure failure;
        const char *slots;      /* at the end */
} Scenario;

static void run_scenario(const Scenario *sc) {
        Txn t;
        pool_init(&t, &sc->pool);
        for (size_t i = 0; i < ELEMENTSOF(sc->steps) && sc->steps[i].event; i++) {
                TxnEvent e;
                unsigned slot;
                char got[2048];
                parse_event(sc->steps[i].event, &e, &slot);
                Snapshot before = snapshot(&t);
                size_t n = txn_step(&t, e, slot);
                render_actions(&t, n, got, sizeof(got));
                if (strcmp(got, sc->steps[i].actions) != 0)
                        fail_msg("%s: step %zu (%s): actions '%s', expected '%s'", sc->name, i + 1, sc->steps[i].event,
                                 got, sc->steps[i].actions);
                if (n == 0) {
                        Snapshot after = snapshot(&t);
                        if (!snapshot_equal(&before, &after, t.n_slots))
                                fail_msg("%s: step %zu (%s) did nothing but changed the state", sc->name, i + 1,
                                         sc->steps[i].event);
                }
        }
        char slots[256];
        render_slots(&t, slots, sizeof(slots));
        if (t.result != sc->result || t.failure != sc->failure || strcmp(slots, sc->slots) != 0)
                fail_msg("%s: ended %s (failure %s), slots '%s'; expected %s (failure %s), slots '%s'", sc->name,
                         result_name(t.result), reason_name(t.failure), slots, result_name(sc->result),
                         reason_name(sc->failure), sc->slots);
        if (sc->result != TXN_RESULT_NONE)
                assert_int_equal(t.phase, TXN_PHASE_DONE);
        txn_done(&t);
}

static const Scenario scenarios[] = {
        { "failure in the first batch", { "", TXN_RELOAD, "TTTT", 4, 4, 2, 0 },
          { { "B", "start0 start1" },
            { "F1", "fail1:new abandon0 abandon1 finish" } },
          TXN_RESULT_FAILED, TXN_FAILURE_NEW_WORKER, "AB AB U U" },

        { "failure in the last batch, rolled back out of order", { "", TXN_RELOAD, "TTTT", 4, 4, 2, 0 },
          { { "B", "start0 start1" },
            { "R0", "switch0 start2" },
            { "R1", "switch1 start3" },
            { "R2", "switch2" },
            { "F3", "fail3:new abandon3 rollback3 start-old0 start-old1" },
            { "R1", "switch1 start-old2" },
            { "R0", "switch0" },
            { "R2", "switch2 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "RD RD RD AB" },

        { "failure during the rollback", { "", TXN_RELOAD, "TTTT", 4, 4, 1, 0 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "R1", "switch1 start2" },
            { "R2", "switch2 start3" },
            { "F3", "fail3:new abandon3 rollback3 start-old0" },
            { "R0", "switch0 start-old1" },
            { "F1", "fail1:rollback abandon1 finish" },
            /* over: late events for its slots change nothing */
            { "R1", "" },
            { "R2", "" } },
          /* the first failure is the one recorded; 1 and 2 keep the new config */
          TXN_RESULT_ROLLBACK_FAILED, TXN_FAILURE_NEW_WORKER, "RD SW SW AB" },

        { "a worker fails after a later one switched (batch 2)", { "", TXN_RELOAD, "TTTF", 4, 4, 2, 0 },
          { { "B", "start0 start1" },
            { "R1", "switch1 start2" },
            { "F0", "fail0:new abandon0 abandon2 rollback1 start-old1" },
            { "R2", "" },       /* abandoned: too late */
            { "R1", "switch1 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "AB RD AB U" },

        { "a reload growing 2 -> 4 fails in a new slot", { "", TXN_RELOAD, "TTTT", 2, 4, 1, 0 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "R1", "switch1 start2" },
            { "F2", "fail2:new abandon2 shrink2 rollback2 start-old0" },
            { "R0", "switch0 start-old1" },
            { "R1", "switch1 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "RD RD RM RM" },

        { "a reload growing 2 -> 4 fails after the new slots switched", { "", TXN_RELOAD, "TTTT", 2, 4, 4, 0 },
          { { "B", "start0 start1 start2 start3" },
            { "R3", "switch3" },
            { "R2", "switch2" },
            { "R0", "switch0" },
            /* 2 and 3 served the new config: removed, not restored */
            { "F1", "fail1:new abandon1 shrink2 rollback1 start-old0" },
            { "R0", "switch0 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "RD AB RM RM" },

        { "a reload growing 2 -> 4 commits", { "", TXN_RELOAD, "TTTT", 2, 4, 2, 0 },
          { { "B", "start0 start1" },
            { "R0", "switch0 start2" },
            { "R1", "switch1 start3" },
            { "R3", "switch3" },
            { "R2", "switch2 commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW SW SW SW" },

        { "a reload shrinking 4 -> 2 commits, shrinking first", { "", TXN_RELOAD, "TTFF", 4, 2, 1, 0 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "R1", "switch1 shrink2 commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW SW U U" },

        { "a reload shrinking 4 -> 2 fails: nothing removed", { "", TXN_RELOAD, "TTFF", 4, 2, 1, 0 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "F1", "fail1:new abandon1 rollback1 start-old0" },
            { "R0", "switch0 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "RD AB U U" },

        { "canary: canaries, canary-time, the rest, commit", { "", TXN_RELOAD, "TTTT", 4, 4, 2, 1 },
          { { "B", "start0" },  /* batch 2, but one canary */
            { "R0", "switch0 canary-timer" },
            { "C", "start1 start2" },
            { "R1", "switch1 start3" },
            { "R2", "switch2" },
            { "R3", "switch3 commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW SW SW SW" },

        { "a canary exits during canary-time", { "", TXN_RELOAD, "TTTT", 4, 4, 2, 2 },
          { { "B", "start0 start1" },
            { "R0", "switch0" },
            { "R1", "switch1 canary-timer" },
            { "X1", "fail1:canary rollback2 start-old0 start-old1" },
            { "C", "" },        /* the timer the manager did not disarm in time */
            { "X2", "" },
            { "R0", "switch0" },
            { "R1", "switch1 finish" } },
          /* only the canaries were touched, and only they restored */
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_CANARY, "RD RD U U" },

        { "a canary fails before it is ready", { "", TXN_RELOAD, "TTTT", 4, 4, 2, 2 },
          { { "B", "start0 start1" },
            { "F0", "fail0:new abandon0 abandon1 finish" } },
          TXN_RESULT_FAILED, TXN_FAILURE_NEW_WORKER, "AB AB U U" },

        { "the second canary fails, the first is restored", { "", TXN_RELOAD, "TTTT", 4, 4, 1, 2 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "F1", "fail1:new abandon1 rollback1 start-old0" },
            { "R0", "switch0 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_NEW_WORKER, "RD AB U U" },

        { "exits of non-canaries, and of canaries after canary-time, are not the transaction's",
          { "", TXN_RELOAD, "TTT", 3, 3, 1, 1 },
          { { "B", "start0" },
            { "X1", "" },       /* waiting non-canary */
            { "R0", "switch0 canary-timer" },
            { "X1", "" },
            { "X2", "" },
            { "C", "start1" },
            { "X0", "" },       /* canary after canary-time */
            { "R1", "switch1 start2" },
            { "X1", "" },       /* switched non-canary */
            { "R2", "switch2 commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW SW SW" },

        { "canary >= the number of targets: every target is a canary", { "", TXN_RELOAD, "TFT", 3, 3, 1, 5 },
          { { "B", "start0" },
            { "R0", "switch0 start2" },
            { "R2", "switch2 canary-timer" },
            { "X1", "" },       /* no target, no canary */
            { "C", "commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW U SW" },

        { "canary >= targets, a canary exits", { "", TXN_RELOAD, "TFT", 3, 3, 2, 3 },
          { { "B", "start0 start2" },
            { "R2", "switch2" },
            { "R0", "switch0 canary-timer" },
            { "X0", "fail0:canary rollback2 start-old0 start-old2" },
            { "R2", "switch2" },
            { "R0", "switch0 finish" } },
          TXN_RESULT_ROLLED_BACK, TXN_FAILURE_CANARY, "RD U RD" },

        { "a restart that fails keeps what serves: no rollback, no commit", { "", TXN_RESTART, "TTT", 3, 3, 1, 0 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "F1", "fail1:new abandon1 finish" },
            { "R1", "" } },
          TXN_RESULT_FAILED, TXN_FAILURE_NEW_WORKER, "SW AB U" },

        { "a restart that succeeds commits nothing", { "", TXN_RESTART, "TFT", 3, 3, 2, 0 },
          { { "B", "start0 start2" },
            { "R2", "switch2" },
            { "R0", "switch0 finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW U SW" },

        { "a restart has no canaries, even asked for", { "", TXN_RESTART, "TTT", 3, 3, 1, 2 },
          { { "B", "start0" },
            { "R0", "switch0 start1" },
            { "C", "" },
            { "X0", "" },       /* an exit is the respawn's business */
            { "R1", "switch1 start2" },
            { "R2", "switch2 finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "SW SW SW" },

        { "zero targets commit at BEGIN", { "", TXN_RELOAD, "FF", 2, 2, 1, 0 },
          { { "B", "commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U" },

        { "zero targets with canaries commit at BEGIN", { "", TXN_RELOAD, "FF", 2, 2, 1, 1 },
          { { "B", "commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U" },

        { "zero targets, shrinking 3 -> 2", { "", TXN_RELOAD, "FFF", 3, 2, 1, 0 },
          { { "B", "shrink2 commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U U" },

        { "a restart of zero targets", { "", TXN_RESTART, "FF", 2, 2, 1, 0 },
          { { "B", "finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U" },

        { "scale up 2 -> 4: the new slots get their workers at once, in one step", { "", TXN_SCALE, "FFTT", 2, 4, 1, 0 },
          { { "B", "spawn2 spawn3 finish" },
            { "R2", "" },       /* nothing waits for them */
            { "F3", "" },       /* a failure is the respawn's business */
            { "X3", "" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U SW SW" },

        { "scale down 4 -> 2: the highest slots go", { "", TXN_SCALE, "FFFF", 4, 2, 1, 0 },
          { { "B", "shrink2 finish" },
            { "C", "" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U U U U" },

        { "a scale has no canaries and no batches", { "", TXN_SCALE, "FTTT", 1, 4, 1, 2 },
          { { "B", "spawn1 spawn2 spawn3 finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "U SW SW SW" },

        { "an empty pool", { "", TXN_RELOAD, "", 0, 0, 1, 0 },
          { { "R0", "" },
            { "B", "commit finish" } },
          TXN_RESULT_COMMITTED, TXN_FAILURE_NONE, "" },
};

static void test_scenarios(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++)
                run_scenario(&scenarios[i]);
}

/* ---- stale events ----------------------------------------------------------- */

static void expect_ignored(Txn *t, const char *event) {
        TxnEvent e;
        unsigned slot;
        parse_event(event, &e, &slot);
        Snapshot before = snapshot(t);
        size_t n = txn_step(t, e, slot);
        Snapshot after = snapshot(t);
        if (n != 0 || !snapshot_equal(&before, &after, t->n_slots))
                fail_msg("%s in %s: not ignored (%zu actions)", event, txn_phase_to_string(before.phase), n);
        assert_int_equal(t->n_actions, 0);
}

static void test_stale_events(void **state) {
        const Pool p = { "", TXN_RELOAD, "TTTT", 4, 4, 2, 1 };
        Txn t;
        pool_init(&t, &p);

        /* before BEGIN */
        expect_ignored(&t, "R0");
        expect_ignored(&t, "F0");
        expect_ignored(&t, "C");
        drive(&t, "B");
        /* BEGIN twice; CANARY_OVER outside CANARY_WATCH */
        expect_ignored(&t, "B");
        expect_ignored(&t, "C");
        /* out of range, for every slot event */
        expect_ignored(&t, "R4");
        expect_ignored(&t, "F4");
        expect_ignored(&t, "X4");
        expect_ignored(&t, "R4294967295");
        expect_ignored(&t, "F1000");
        drive(&t, "R0");
        assert_int_equal(t.phase, TXN_PHASE_CANARY_WATCH);
        expect_ignored(&t, "B");
        expect_ignored(&t, "R0");       /* ready twice */
        expect_ignored(&t, "X4");
        drive(&t, "C");
        assert_int_equal(t.phase, TXN_PHASE_ROLLING);
        expect_ignored(&t, "C");        /* canary-time over twice */
        expect_ignored(&t, "F0");       /* a serving worker's failure is not the transaction's */
        drive(&t, "R1 F2");             /* 3 abandoned, 0 and 1 roll back */
        assert_int_equal(t.phase, TXN_PHASE_ROLLING_BACK);
        assert_int_equal(t.slots[3], TXN_SLOT_ABANDONED);
        expect_ignored(&t, "R3");       /* READY for an abandoned slot */
        expect_ignored(&t, "F3");
        expect_ignored(&t, "R2");
        expect_ignored(&t, "C");
        expect_ignored(&t, "B");
        expect_ignored(&t, "R5");
        drive(&t, "R0 R1");
        assert_int_equal(t.phase, TXN_PHASE_DONE);
        assert_int_equal(t.result, TXN_RESULT_ROLLED_BACK);
        /* after DONE nothing applies */
        for (unsigned e = 0; e < _TXN_EVENT_MAX; e++)
                for (unsigned s = 0; s <= 4; s++) {
                        char ev[8];
                        snprintf(ev, sizeof(ev), "%s%u", event_letters[e], s);
                        expect_ignored(&t, ev);
                }
        txn_done(&t);
}

/* ---- ownership, progress, canaries, names, limits ---------------------------- */

static void expect_owned(const Txn *t, const char *owned) {
        for (unsigned i = 0; i < t->n_slots; i++)
                if (txn_owns_slot(t, i) != (owned[i] == 'o'))
                        fail_msg("slot %u (%s): owned %d, expected '%s'", i, txn_slot_to_string(t->slots[i]),
                                 txn_owns_slot(t, i), owned);
        assert_false(txn_owns_slot(t, t->n_slots));
        assert_false(txn_owns_slot(t, 1000));
}

static void test_owns_slot(void **state) {
        const Pool p = { "", TXN_RELOAD, "TTTFT", 4, 5, 1, 0 };
        Txn t;
        pool_init(&t, &p);
        expect_owned(&t, ".....");
        drive(&t, "B R0 R1");
        expect_owned(&t, ".....");      /* starting, switched, waiting: the manager's as usual */
        drive(&t, "R2 F4");
        /* 0 restoring, 1 2 waiting to be restored, 3 untouched, 4 removed */
        assert_int_equal(t.slots[0], TXN_SLOT_RESTORING);
        assert_int_equal(t.slots[1], TXN_SLOT_RESTORE_WAITING);
        assert_int_equal(t.slots[4], TXN_SLOT_REMOVED);
        expect_owned(&t, "ooo..");
        drive(&t, "R0");
        expect_owned(&t, ".oo..");      /* restored: no longer */
        drive(&t, "F1");                /* rollback failed: the transaction lets go of all */
        assert_int_equal(t.phase, TXN_PHASE_DONE);
        assert_int_equal(t.slots[2], TXN_SLOT_SWITCHED);
        expect_owned(&t, ".....");
        txn_done(&t);
}

static void expect_progress(const Txn *t, unsigned done, unsigned total) {
        unsigned d = 99, n = 99;
        txn_progress(t, &d, &n);
        if (d != done || n != total)
                fail_msg("%s: progress %u/%u, expected %u/%u", txn_phase_to_string(t->phase), d, n, done, total);
}

static void test_progress(void **state) {
        const Pool p = { "", TXN_RELOAD, "TTFTT", 5, 5, 2, 1 };
        Txn t;
        pool_init(&t, &p);
        expect_progress(&t, 0, 4);
        drive(&t, "B");
        expect_progress(&t, 0, 4);
        drive(&t, "R0");
        expect_progress(&t, 1, 4);
        drive(&t, "C R1");
        expect_progress(&t, 2, 4);
        drive(&t, "R3");
        expect_progress(&t, 3, 4);
        /* 4 fails: 0 1 3 roll back, two at a time */
        drive(&t, "F4");
        expect_progress(&t, 0, 3);
        drive(&t, "R1");
        expect_progress(&t, 1, 3);
        drive(&t, "R0");
        expect_progress(&t, 2, 3);
        drive(&t, "R3");
        assert_int_equal(t.result, TXN_RESULT_ROLLED_BACK);
        expect_progress(&t, 3, 3);
        txn_done(&t);

        /* committed: all of them */
        pool_init(&t, &p);
        drive(&t, "B R0 C R1 R3 R4");
        assert_int_equal(t.result, TXN_RESULT_COMMITTED);
        expect_progress(&t, 4, 4);
        txn_done(&t);
}

static void test_is_canary(void **state) {
        const Pool p = { "", TXN_RELOAD, "FTFTT", 5, 5, 1, 2 };
        Txn t;
        pool_init(&t, &p);
        /* the first two targets: 1 and 3 (2, below them, is no target) */
        assert_false(txn_is_canary(&t, 0));
        assert_true(txn_is_canary(&t, 1));
        assert_false(txn_is_canary(&t, 2));
        assert_true(txn_is_canary(&t, 3));
        assert_false(txn_is_canary(&t, 4));
        drive(&t, "B");
        assert_int_equal(t.actions[0].type, TXN_ACTION_START);
        assert_int_equal(t.actions[0].slot, 1);
        /* the exit of 2 (no target below the last canary) is not a canary's */
        drive(&t, "R1 R3");
        assert_int_equal(t.phase, TXN_PHASE_CANARY_WATCH);
        expect_ignored(&t, "X2");
        expect_ignored(&t, "X4");
        expect_ignored(&t, "X0");
        txn_done(&t);
}

static void test_names(void **state) {
        for (unsigned i = 0; i < _TXN_PHASE_MAX; i++)
                assert_string_not_equal(txn_phase_to_string(i), "?");
        for (unsigned i = 0; i < _TXN_SLOT_MAX; i++)
                assert_string_not_equal(txn_slot_to_string(i), "?");
        for (unsigned i = 0; i < _TXN_EVENT_MAX; i++)
                assert_string_not_equal(txn_event_to_string(i), "?");
        for (unsigned i = 0; i < _TXN_ACTION_MAX; i++)
                assert_string_not_equal(txn_action_to_string(i), "?");
        assert_string_equal(txn_phase_to_string(_TXN_PHASE_MAX), "?");
        assert_string_equal(txn_slot_to_string(-1), "?");
        assert_string_equal(txn_action_to_string(_TXN_ACTION_MAX), "?");
        assert_string_equal(txn_phase_to_string(TXN_PHASE_ROLLING_BACK), "rolling-back");

        Txn t;
        bool targets[1] = { true };
        assert_int_equal(txn_init(&t, _TXN_KIND_MAX, targets, 1, 1, 1, 0), -EINVAL);
        /* batch 0 means 1 */
        assert_int_equal(txn_init(&t, TXN_RELOAD, targets, 1, 1, 0, 0), 0);
        assert_int_equal(t.batch, 1);
        txn_done(&t);
        txn_done(&t);   /* twice is harmless */
}

static size_t count_actions(const Txn *t, size_t n, TxnActionType type) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += t->actions[i].type == type;
        return c;
}

/* 64 slots, batch 64: the biggest steps stay within max_actions (emit()
 * drops what does not fit, so a too small bound would lose actions). */
static void test_64_slots(void **state) {
        bool targets[64];
        for (unsigned i = 0; i < 64; i++)
                targets[i] = true;
        Txn t;

        /* all 64 start at once, and one failure abandons them all */
        assert_int_equal(txn_init(&t, TXN_RELOAD, targets, 64, 64, 64, 0), 0);
        size_t n = txn_step(&t, TXN_EVENT_BEGIN, 0);
        assert_int_equal(n, 64);
        assert_int_equal(count_actions(&t, n, TXN_ACTION_START), 64);
        n = txn_step(&t, TXN_EVENT_FAILED, 17);
        assert_true(n <= t.max_actions);
        assert_int_equal(n, 1 + 64 + 1);
        assert_int_equal(t.actions[0].type, TXN_ACTION_FAIL);
        assert_int_equal(count_actions(&t, n, TXN_ACTION_ABANDON), 64);
        for (unsigned i = 0; i < 64; i++)
                assert_int_equal(t.actions[1 + i].slot, i);
        assert_int_equal(t.actions[n - 1].type, TXN_ACTION_FINISH);
        assert_int_equal(t.result, TXN_RESULT_FAILED);
        assert_int_equal(txn_count(&t, TXN_SLOT_ABANDONED), 64);
        txn_done(&t);

        /* growing 32 -> 64: half switched, the other half abandoned and
         * removed, the first half restored all at once */
        assert_int_equal(txn_init(&t, TXN_RELOAD, targets, 32, 64, 64, 0), 0);
        n = txn_step(&t, TXN_EVENT_BEGIN, 0);
        assert_int_equal(n, 64);
        for (unsigned i = 0; i < 32; i++)
                assert_int_equal(txn_step(&t, TXN_EVENT_READY, i), 1);
        n = txn_step(&t, TXN_EVENT_FAILED, 40);
        assert_true(n <= t.max_actions);
        assert_int_equal(n, 1 + 32 + 1 + 1 + 32);
        assert_int_equal(count_actions(&t, n, TXN_ACTION_ABANDON), 32);
        assert_int_equal(count_actions(&t, n, TXN_ACTION_START_OLD), 32);
        assert_int_equal(t.actions[33].type, TXN_ACTION_SHRINK);
        assert_int_equal(t.actions[33].slot, 32);
        assert_int_equal(t.actions[34].type, TXN_ACTION_ROLLBACK);
        assert_int_equal(t.actions[34].slot, 32);
        for (unsigned i = 0; i < 32; i++) {
                assert_int_equal(t.actions[35 + i].type, TXN_ACTION_START_OLD);
                assert_int_equal(t.actions[35 + i].slot, i);
        }
        assert_int_equal(txn_count(&t, TXN_SLOT_REMOVED), 32);
        /* and the rollback fails: one FAIL, 32 ABANDONs, FINISH */
        n = txn_step(&t, TXN_EVENT_FAILED, 5);
        assert_int_equal(n, 1 + 32 + 1);
        assert_int_equal(t.result, TXN_RESULT_ROLLBACK_FAILED);
        assert_int_equal(txn_count(&t, TXN_SLOT_SWITCHED), 32);
        txn_done(&t);

        /* 63 switched one at a time, the last one's READY commits with a shrink */
        assert_int_equal(txn_init(&t, TXN_RELOAD, targets, 64, 63, 64, 0), 0);
        targets[63] = false;
        txn_done(&t);
        assert_int_equal(txn_init(&t, TXN_RELOAD, targets, 64, 63, 64, 0), 0);
        assert_int_equal(txn_step(&t, TXN_EVENT_BEGIN, 0), 63);
        for (unsigned i = 0; i < 62; i++)
                assert_int_equal(txn_step(&t, TXN_EVENT_READY, i), 1);
        n = txn_step(&t, TXN_EVENT_READY, 62);
        char got[256];
        render_actions(&t, n, got, sizeof(got));
        assert_string_equal(got, "switch62 shrink63 commit finish");
        txn_done(&t);
}

/* ---- batch size and the reload queue (from test-reload.c) -------------------- */

static void test_batch_parse_and_resolve(void **state) {
        unsigned v;
        bool pct;

        assert_int_equal(reload_batch_parse("3", &v, &pct), 0);
        assert_int_equal(v, 3);
        assert_false(pct);
        assert_int_equal(reload_batch_parse("25%", &v, &pct), 0);
        assert_int_equal(v, 25);
        assert_true(pct);
        assert_true(reload_batch_parse("0", &v, &pct) < 0);
        assert_true(reload_batch_parse("101%", &v, &pct) < 0);
        assert_true(reload_batch_parse("%", &v, &pct) < 0);
        assert_true(reload_batch_parse("", &v, &pct) < 0);
        assert_true(reload_batch_parse("x%", &v, &pct) < 0);

        assert_int_equal(reload_batch_resolve(25, true, 4), 1);
        assert_int_equal(reload_batch_resolve(25, true, 5), 2);   /* rounded up */
        assert_int_equal(reload_batch_resolve(25, true, 1), 1);
        assert_int_equal(reload_batch_resolve(100, true, 8), 8);
        assert_int_equal(reload_batch_resolve(10, false, 4), 4);  /* capped at the pool */
        assert_int_equal(reload_batch_resolve(2, false, 4), 2);
        assert_int_equal(reload_batch_resolve(1, true, 0), 1);
}

/* Requests while a transaction runs: a reload waits for it (the queue),
 * a restart, a recycle or a scale is refused; scale during a reload, a
 * reload during a scale, a restart during a restart. */
static void test_admission(void **state) {
        static const struct {
                TxnKind running, asked;
                TxnAdmission answer;
        } cases[] = {
                { TXN_RELOAD,  TXN_RELOAD,  TXN_ADMIT_QUEUED },
                { TXN_RELOAD,  TXN_RESTART, TXN_ADMIT_BUSY },
                { TXN_RELOAD,  TXN_SCALE,   TXN_ADMIT_BUSY },   /* scale during a reload */
                { TXN_RESTART, TXN_RELOAD,  TXN_ADMIT_QUEUED },
                { TXN_RESTART, TXN_RESTART, TXN_ADMIT_BUSY },
                { TXN_RESTART, TXN_SCALE,   TXN_ADMIT_BUSY },
                { TXN_SCALE,   TXN_RELOAD,  TXN_ADMIT_QUEUED },
                { TXN_SCALE,   TXN_RESTART, TXN_ADMIT_BUSY },
                { TXN_SCALE,   TXN_SCALE,   TXN_ADMIT_BUSY },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ReloadQueue q = {};
                assert_int_equal(txn_admit(&q, cases[i].running), TXN_ADMIT_START);
                assert_true(q.running);
                assert_int_equal(txn_admit(&q, cases[i].asked), cases[i].answer);
                /* a queued reload starts when the running one ends; a refused
                 * request left nothing behind */
                assert_int_equal(reload_queue_end(&q), cases[i].answer == TXN_ADMIT_QUEUED);
                if (cases[i].answer == TXN_ADMIT_QUEUED)
                        assert_false(reload_queue_end(&q));
                assert_false(q.running);
        }
        ReloadQueue q = {};
        assert_int_equal(txn_admit(&q, _TXN_KIND_MAX), TXN_ADMIT_BUSY);
        assert_false(q.running);
}

static void test_coalescing(void **state) {
        ReloadQueue q = {};

        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_START);
        /* three requests during the run collapse into one */
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_QUEUED);
        assert_true(reload_queue_end(&q));      /* the queued one starts */
        assert_true(q.running);
        assert_false(reload_queue_end(&q));     /* and nothing after it */
        assert_false(q.running);
        assert_int_equal(reload_queue_request(&q), RELOAD_REQUEST_START);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_is_complete),
                cmocka_unit_test(test_every_row),
                cmocka_unit_test(test_invariants_of_every_reachable_state),
                cmocka_unit_test(test_scenarios),
                cmocka_unit_test(test_stale_events),
                cmocka_unit_test(test_owns_slot),
                cmocka_unit_test(test_progress),
                cmocka_unit_test(test_is_canary),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_64_slots),
                cmocka_unit_test(test_batch_parse_and_resolve),
                cmocka_unit_test(test_coalescing),
                cmocka_unit_test(test_admission),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
