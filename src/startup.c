/* Start-up's give-up rules (see startup.h). */
#include "sockherd/startup.h"

static bool every_slot_reached(const Slot *slots, unsigned n, unsigned attempts, bool before_run) {
        for (unsigned i = 0; i < n; i++)
                if ((before_run ? slots[i].exits_before_run : slots[i].exits_before_ready) < attempts)
                        return false;
        return true;
}

StartVerdict start_verdict(const StartFacts *f, const Slot *slots, unsigned n_slots) {
        if (f->attempts == 0 || f->restored || f->transaction || f->stopping || n_slots == 0 || f->alive > 0)
                return START_GO_ON;
        if (!f->command_ran && every_slot_reached(slots, n_slots, f->attempts, true))
                return START_CANNOT_RUN;
        if (!f->worker_was_ready && every_slot_reached(slots, n_slots, f->attempts, false))
                return START_NEVER_READY;
        return START_GO_ON;
}
