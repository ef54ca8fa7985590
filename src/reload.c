/* The rolling reload transaction (see reload.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/parse.h"
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

bool reload_queue_end(ReloadQueue *q) {
        if (q->pending) {
                q->pending = false;
                return true; /* still running: the queued one takes over */
        }
        q->running = false;
        return false;
}
