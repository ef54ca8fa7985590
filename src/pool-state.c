/* Re-exec: the pool and the listening sockets into the State the new image
 * gets, and its slots back (see pool-state.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "sockherd/pool-state.h"
#include "sockherd/util.h"

static int record_worker(State *s, const Worker *w, StateRole role) {
        StateWorker sw = {
                .role = role, .slot = w->slot, .pid = w->pid, .generation = w->generation,
                .state = w->state, .started_usec = w->started_usec,
        };
        if (role == STATE_ROLE_SERVING) {
                sw.recycle_at_usec = w->recycle_at_usec;
                snprintf(sw.status, sizeof(sw.status), "%s", w->status);
        }
        return state_add_worker(s, &sw);
}

int pool_state_record(const Pool *pool, const ListenSet *sockets, State *s) {
        for (size_t i = 0; i < sockets->n; i++) {
                const ListenSocket *ls = &sockets->sockets[i];
                StateSocket sock = { .fd = ls->fd, .backlog_taken = ls->backlog_taken };
                snprintf(sock.name, sizeof(sock.name), "%s", ls->name);
                snprintf(sock.unlink_path, sizeof(sock.unlink_path), "%s", ls->unlink_path ?: "");
                if (state_add_socket(s, &sock) < 0)
                        return -ENOMEM;
        }
        s->n_slots = pool->n_slots;
        s->slots = calloc(pool->n_slots ? pool->n_slots : 1, sizeof(StateSlot));
        if (!s->slots)
                return -ENOMEM;
        for (unsigned i = 0; i < pool->n_slots; i++) {
                const Slot *sl = &pool->slots[i];
                s->slots[i] = (StateSlot) { sl->restarts, sl->backoff.failures, sl->lane_flip };
                for (size_t j = 0; sl->fds && j < sockets->n; j++)
                        if (sl->fds[j] >= 0 &&
                            state_add_slot_socket(s, &(StateSlotSocket) { i, (unsigned) j, sl->fds[j] }) < 0)
                                return -ENOMEM;
                if (sl->worker && record_worker(s, sl->worker, STATE_ROLE_SERVING) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < pool->n_retiring; i++) {
                const Worker *w = pool->retiring[i];
                if (record_worker(s, w, STATE_ROLE_RETIRING) < 0)
                        return -ENOMEM;
                /* one still draining its old sockets goes on draining them */
                for (size_t k = 0; w->state == WORKER_READY && k < w->n_owned_fds; k++)
                        if (state_add_drain_socket(s, &(StateDrainSocket) { w->pid, w->owned_fds[k] }) < 0)
                                return -ENOMEM;
        }
        return 0;
}

int pool_state_restore_slots(Pool *pool, size_t n_sockets, Config *config, uint64_t generation, const State *s) {
        unsigned old_slots = pool->n_slots;
        int r;

        if (s->n_slots != old_slots) {
                /* the pool had been scaled: keep its size, not the config's */
                for (unsigned i = s->n_slots; i < old_slots; i++)
                        pool->slots[i].config = config_free(pool->slots[i].config);
                if (s->n_slots < old_slots)
                        pool->n_slots = s->n_slots;
                else if ((r = pool_resize(pool, s->n_slots)) < 0)
                        return r;
        }
        for (unsigned i = 0; i < pool->n_slots; i++) {
                Slot *sl = &pool->slots[i];
                if (!sl->config)
                        sl->config = config_ref(config);
                sl->generation = generation;
                sl->restarts = s->slots[i].restarts;
                sl->backoff.failures = s->slots[i].backoff_failures;
                sl->lane_flip = s->slots[i].lane_flip;
        }

        /* per-slot sockets (reuseport, least-connections), CLOEXEC again */
        for (size_t i = 0; i < s->n_slot_sockets; i++) {
                const StateSlotSocket *ss = &s->slot_sockets[i];
                (void) fcntl(ss->fd, F_SETFD, FD_CLOEXEC);
                if (ss->index >= n_sockets || ss->slot >= pool->n_slots) {
                        safe_close(ss->fd);
                        continue;
                }
                Slot *sl = &pool->slots[ss->slot];
                if (!sl->fds) {
                        sl->fds = malloc(n_sockets * sizeof(int));
                        if (!sl->fds)
                                return -ENOMEM;
                        for (size_t j = 0; j < n_sockets; j++)
                                sl->fds[j] = -1;
                }
                sl->fds[ss->index] = ss->fd;
        }
        return 0;
}

void pool_state_take_drain_sockets(const State *s, Worker *w) {
        for (size_t i = 0; i < s->n_drain_sockets; i++) {
                StateDrainSocket *d = &s->drain_sockets[i];
                if (d->pid != w->pid || d->fd < 0)
                        continue;
                (void) fcntl(d->fd, F_SETFD, FD_CLOEXEC);
                (void) worker_own_fd(w, d->fd);
                d->fd = -1;
        }
}
