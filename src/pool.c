/* Slot bookkeeping (see pool.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockherd/pool.h"
#include "sockherd/util.h"

int pool_resize(Pool *p, unsigned n_slots) {
        for (unsigned i = n_slots; i < p->n_slots; i++)
                if (p->slots[i].worker || p->slots[i].incoming || p->slots[i].restart_source || p->slots[i].fds)
                        return -EBUSY;

        if (n_slots < p->n_slots) {
                /* shrinking cannot fail: drop the slots, keep the memory */
                for (unsigned i = n_slots; i < p->n_slots; i++)
                        p->slots[i].config = config_free(p->slots[i].config);
                p->n_slots = n_slots;
                return 0;
        }
        Slot *ns = realloc(p->slots, (n_slots ? n_slots : 1) * sizeof(Slot));
        if (!ns)
                return -ENOMEM;
        if (n_slots > p->n_slots)
                memset(ns + p->n_slots, 0, (n_slots - p->n_slots) * sizeof(Slot));
        p->slots = ns;
        p->n_slots = n_slots;
        return 0;
}

void pool_done(Pool *p, size_t n_fds) {
        for (unsigned i = 0; i < p->n_slots; i++) {
                config_free(p->slots[i].config);
                for (size_t j = 0; p->slots[i].fds && j < n_fds; j++)
                        if (p->slots[i].fds[j] >= 0)
                                close(p->slots[i].fds[j]);
                free(p->slots[i].fds);
        }
        free(p->slots);
        free(p->retiring);
        *p = (Pool) {};
}

const char *slot_state_to_string(const Slot *sl) {
        if (sl->worker)
                return worker_state_to_string(sl->worker->state);
        if (!sl->restart_source)
                return "stopped";
        return backoff_in_crash_loop(&sl->backoff) ? "crash-loop" : "backoff";
}

int worker_own_fd(Worker *w, int fd) {
        if (!w || ARRAY_APPEND(w->owned_fds, w->n_owned_fds, fd) < 0) {
                close(fd);
                return -ENOMEM;
        }
        return 0;
}

void worker_close_owned_fds(Worker *w) {
        for (size_t i = 0; i < w->n_owned_fds; i++)
                close(w->owned_fds[i]);
        free(w->owned_fds);
        w->owned_fds = NULL;
        w->n_owned_fds = 0;
}

int pool_retire(Pool *p, Worker *w) {
        return ARRAY_APPEND(p->retiring, p->n_retiring, w);
}

bool pool_unretire(Pool *p, Worker *w) {
        for (size_t i = 0; i < p->n_retiring; i++)
                if (p->retiring[i] == w) {
                        p->retiring[i] = p->retiring[--p->n_retiring];
                        return true;
                }
        return false;
}

Worker *pool_find(const Pool *p, pid_t pid) {
        for (unsigned i = 0; i < p->n_slots; i++) {
                if (p->slots[i].worker && p->slots[i].worker->pid == pid)
                        return p->slots[i].worker;
                if (p->slots[i].incoming && p->slots[i].incoming->pid == pid)
                        return p->slots[i].incoming;
        }
        for (size_t i = 0; i < p->n_retiring; i++)
                if (p->retiring[i]->pid == pid)
                        return p->retiring[i];
        return NULL;
}

unsigned pool_ready(const Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].worker && p->slots[i].worker->state == WORKER_READY)
                        n++;
        return n;
}

static bool alive(const Worker *w) {
        return w && w->state != WORKER_EXITED;
}

unsigned pool_alive(const Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                n += alive(p->slots[i].worker) + alive(p->slots[i].incoming);
        for (size_t i = 0; i < p->n_retiring; i++)
                n += alive(p->retiring[i]);
        return n;
}
