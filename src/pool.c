/* Slot bookkeeping (see pool.h). */
#include <errno.h>
#include <stdlib.h>

#include "sockherd/pool.h"

int pool_init(Pool *p, unsigned n_slots) {
        p->slots = calloc(n_slots ? n_slots : 1, sizeof(Slot));
        if (!p->slots)
                return -ENOMEM;
        p->n_slots = n_slots;
        return 0;
}

void pool_done(Pool *p) {
        free(p->slots);
        *p = (Pool) {};
}

Worker *pool_find(const Pool *p, pid_t pid) {
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].worker && p->slots[i].worker->pid == pid)
                        return p->slots[i].worker;
        return NULL;
}

unsigned pool_count(const Pool *p, WorkerState state) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].worker && p->slots[i].worker->state == state)
                        n++;
        return n;
}

unsigned pool_alive(const Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].worker && p->slots[i].worker->state != WORKER_EXITED)
                        n++;
        return n;
}
