/* The manager's whole state for a re-exec: recorded into a State for the
 * new image (manager-reexec.c writes and hands it over), and taken back by
 * that image. The one place that knows every field a re-exec keeps. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "manager-internal.h"
#include "sockherd/log.h"
#include "sockherd/util.h"

int manager_state_record(Manager *m, State *s) {
        *s = (State) {
                .generation = m->generation,
                .last_generation = m->last_generation,
                .requests = m->requests,
                .announced_ready = m->announced_ready,
                .passed_in = m->sockets.passed_in,
                .notify_fd = m->notify_fd,
                .control_fd = manager_control_fd(m->control),
                .control_uid = m->control_uid,
                .http_fd = manager_http_fd(m->http),
                .n_slots = m->pool.n_slots,
        };
        snprintf(s->reload_error, sizeof(s->reload_error), "%s", m->reload_error);
        snprintf(s->notify_address, sizeof(s->notify_address), "%s", m->notify_address);
        snprintf(s->control_path, sizeof(s->control_path), "%s", manager_control_path(m->control) ?: "");
        /* too long for the record: the new image resolves it again */
        const Config *c = m->config;
        if (c->working_directory && c->working_directory_resolved &&
            strlen(c->working_directory) < sizeof(s->working_directory) &&
            strlen(c->working_directory_resolved) < sizeof(s->working_directory_resolved)) {
                strcpy(s->working_directory, c->working_directory);
                strcpy(s->working_directory_resolved, c->working_directory_resolved);
        }
        snprintf(s->http_path, sizeof(s->http_path), "%s", manager_http_path(m->http) ?: "");
        if (manager_balance_record(m, s) < 0)
                return -ENOMEM;

        for (size_t i = 0; i < m->sockets.n; i++) {
                StateSocket sock = { .fd = m->sockets.sockets[i].fd,
                                     .backlog_taken = m->sockets.sockets[i].backlog_taken };
                snprintf(sock.name, sizeof(sock.name), "%s", m->sockets.sockets[i].name);
                snprintf(sock.unlink_path, sizeof(sock.unlink_path), "%s", m->sockets.sockets[i].unlink_path ?: "");
                if (state_add_socket(s, &sock) < 0)
                        return -ENOMEM;
        }
        s->slots = calloc(m->pool.n_slots ? m->pool.n_slots : 1, sizeof(StateSlot));
        if (!s->slots)
                return -ENOMEM;
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                const Slot *sl = &m->pool.slots[i];
                s->slots[i] = (StateSlot) { sl->restarts, sl->backoff.failures, sl->lane_flip };
                for (size_t j = 0; sl->fds && j < m->sockets.n; j++)
                        if (sl->fds[j] >= 0 &&
                            state_add_slot_socket(s, &(StateSlotSocket) { i, (unsigned) j, sl->fds[j] }) < 0)
                                return -ENOMEM;
                const Worker *w = sl->worker;
                if (!w)
                        continue;
                StateWorker sw = {
                        .role = STATE_ROLE_SERVING, .slot = w->slot, .pid = w->pid, .generation = w->generation,
                        .state = w->state, .started_usec = w->started_usec, .recycle_at_usec = w->recycle_at_usec,
                };
                snprintf(sw.status, sizeof(sw.status), "%s", w->status);
                if (state_add_worker(s, &sw) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < m->pool.n_retiring; i++) {
                const Worker *w = m->pool.retiring[i];
                StateWorker sw = {
                        .role = STATE_ROLE_RETIRING, .slot = w->slot, .pid = w->pid, .generation = w->generation,
                        .state = w->state, .started_usec = w->started_usec,
                };
                if (state_add_worker(s, &sw) < 0)
                        return -ENOMEM;
                /* one still draining its old sockets goes on draining them */
                for (size_t k = 0; w->state == WORKER_READY && k < w->n_owned_fds; k++)
                        if (state_add_drain_socket(s, &(StateDrainSocket) { w->pid, w->owned_fds[k] }) < 0)
                                return -ENOMEM;
        }
        return 0;
}

/* The sockets a retiring worker was draining before the re-exec: its own
 * again, CLOEXEC again. Taken (fd -1) from the state, so that whatever no
 * worker takes is closed below. */
static void adopt_drain_sockets(const State *s, Worker *w) {
        for (size_t i = 0; i < s->n_drain_sockets; i++) {
                StateDrainSocket *d = &s->drain_sockets[i];
                if (d->pid != w->pid || d->fd < 0)
                        continue;
                (void) fcntl(d->fd, F_SETFD, FD_CLOEXEC);
                (void) worker_own_fd(w, d->fd);
                d->fd = -1;
        }
}

int manager_restore(Manager *m, const State *s) {
        int r;

        m->restored = true;
        m->generation = s->generation;
        m->last_generation = s->last_generation;
        m->requests = s->requests;
        m->announced_ready = s->announced_ready;
        snprintf(m->reload_error, sizeof(m->reload_error), "%s", s->reload_error);

        /* the generation keeps the directory it began in, not where a
         * symlink points now (the file was read again: only if it still
         * names the same directory) */
        if (s->working_directory_resolved[0] && m->config->working_directory &&
            strcmp(m->config->working_directory, s->working_directory) == 0 &&
            (!m->config->working_directory_resolved ||
             strcmp(m->config->working_directory_resolved, s->working_directory_resolved) != 0)) {
                char *pinned = strdup(s->working_directory_resolved);
                if (!pinned)
                        return -ENOMEM;
                log_info("working-directory %s stays %s, as for generation %" PRIu64 " before the re-exec",
                         s->working_directory, pinned, s->generation);
                free(m->config->working_directory_resolved);
                m->config->working_directory_resolved = pinned;
        }

        r = manager_balance_restore(m, s);
        if (r < 0)
                return r;

        unsigned old_slots = m->pool.n_slots;
        if (s->n_slots != old_slots) {
                /* the pool had been scaled: keep its size, not the config's */
                for (unsigned i = s->n_slots; i < old_slots; i++)
                        m->pool.slots[i].config = config_free(m->pool.slots[i].config);
                if (s->n_slots < old_slots)
                        m->pool.n_slots = s->n_slots;
                else if ((r = pool_resize(&m->pool, s->n_slots)) < 0)
                        return r;
        }
        for (unsigned i = 0; i < m->pool.n_slots; i++) {
                Slot *sl = &m->pool.slots[i];
                if (!sl->config)
                        sl->config = config_ref(m->config);
                sl->generation = m->generation;
                sl->restarts = s->slots[i].restarts;
                sl->backoff.failures = s->slots[i].backoff_failures;
                sl->lane_flip = s->slots[i].lane_flip;
        }

        /* balance=reuseport: each slot's own sockets, CLOEXEC again */
        for (size_t i = 0; i < s->n_slot_sockets; i++) {
                const StateSlotSocket *ss = &s->slot_sockets[i];
                Slot *sl = &m->pool.slots[ss->slot];
                (void) fcntl(ss->fd, F_SETFD, FD_CLOEXEC);
                if (ss->index >= m->sockets.n) {
                        safe_close(ss->fd);
                        continue;
                }
                if (!sl->fds) {
                        sl->fds = malloc(m->sockets.n * sizeof(int));
                        if (!sl->fds)
                                return -ENOMEM;
                        for (size_t j = 0; j < m->sockets.n; j++)
                                sl->fds[j] = -1;
                }
                sl->fds[ss->index] = ss->fd;
        }

        unsigned adopted = 0;
        for (size_t i = 0; i < s->n_workers; i++) {
                const StateWorker *sw = &s->workers[i];
                bool retiring = sw->role == STATE_ROLE_RETIRING;
                if (!retiring && m->pool.slots[sw->slot].worker) {
                        log_warning("state lists two workers for slot %u; pid %d goes", sw->slot, (int) sw->pid);
                        retiring = true;
                }
                Worker *w = manager_adopt_worker(m, sw->pid, sw->slot, sw->generation, sw->state,
                                                 sw->started_usec, retiring);
                if (!w)
                        continue;
                w->recycle_at_usec = sw->recycle_at_usec;
                snprintf(w->status, sizeof(w->status), "%.255s", sw->status);
                if (retiring)
                        adopt_drain_sockets(s, w);
                if (retiring && w->state != WORKER_STOPPING)
                        manager_worker_retire_stop(m, w);
                adopted++;
        }
        /* a slot without a worker was waiting for its respawn */
        for (unsigned i = 0; i < m->pool.n_slots; i++)
                if (!m->pool.slots[i].worker)
                        manager_schedule_restart(m, i, 0);

        log_info("resumed after re-exec: %u workers kept, generation %" PRIu64, adopted, m->generation);
        manager_update_status(m);
        return 0;
}
