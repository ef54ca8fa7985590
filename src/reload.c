/* The rolling reload transaction (see reload.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/reload.h"

int reload_plan_init(ReloadPlan *p, const bool *targets, unsigned n_slots, unsigned batch) {
        *p = (ReloadPlan) { .n_slots = n_slots, .batch = batch ? batch : 1, .state = RELOAD_RUNNING };
        p->slots = calloc(n_slots ? n_slots : 1, sizeof(ReloadSlotState));
        if (!p->slots)
                return -ENOMEM;
        for (unsigned i = 0; i < n_slots; i++)
                p->slots[i] = targets[i] ? RELOAD_SLOT_WAITING : RELOAD_SLOT_UNTOUCHED;
        if (reload_plan_targets(p) == 0)
                p->state = RELOAD_COMMITTED;
        return 0;
}

void reload_plan_done(ReloadPlan *p) {
        free(p->slots);
        *p = (ReloadPlan) {};
}

int reload_plan_next(ReloadPlan *p) {
        if (p->state != RELOAD_RUNNING || p->starting >= p->batch)
                return -1;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i] == RELOAD_SLOT_WAITING) {
                        p->slots[i] = RELOAD_SLOT_STARTING;
                        p->starting++;
                        return (int) i;
                }
        return -1;
}

void reload_plan_ready(ReloadPlan *p, unsigned slot) {
        if (slot >= p->n_slots || p->slots[slot] != RELOAD_SLOT_STARTING)
                return;
        p->slots[slot] = RELOAD_SLOT_SWITCHED;
        p->starting--;
        if (p->state == RELOAD_RUNNING &&
            reload_plan_count(p, RELOAD_SLOT_SWITCHED) == reload_plan_targets(p))
                p->state = RELOAD_COMMITTED;
}

void reload_plan_failed(ReloadPlan *p, unsigned slot) {
        if (slot >= p->n_slots || p->slots[slot] != RELOAD_SLOT_STARTING)
                return;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i] == RELOAD_SLOT_STARTING)
                        p->slots[i] = RELOAD_SLOT_ABANDONED;
        p->starting = 0;
        p->state = RELOAD_ABORTED;
}

unsigned reload_plan_count(const ReloadPlan *p, ReloadSlotState s) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i] == s)
                        n++;
        return n;
}

unsigned reload_plan_targets(const ReloadPlan *p) {
        return p->n_slots - reload_plan_count(p, RELOAD_SLOT_UNTOUCHED);
}
