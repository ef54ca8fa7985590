/* Exponential respawn backoff (see backoff.h). */
#include "sockherd/backoff.h"

uint64_t backoff_next(Backoff *b, const BackoffPolicy *p, uint64_t ran_usec) {
        if (ran_usec >= p->stable_usec)
                b->failures = 0;

        uint64_t delay = p->initial_usec;
        for (unsigned i = 0; i < b->failures && delay < p->max_usec; i++)
                delay = delay > p->max_usec / 2 ? p->max_usec : delay * 2;
        if (delay > p->max_usec)
                delay = p->max_usec;

        if (b->failures < 64)
                b->failures++;
        return delay;
}
