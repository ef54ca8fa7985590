/* Serialising the manager's state for re-exec (see state.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/control-protocol.h"
#include "sockherd/state.h"
#include "sockherd/strbuf.h"
#include "sockherd/util.h"

static const char *const state_names[] = {
        [WORKER_STARTING] = "starting",
        [WORKER_READY] = "ready",
        [WORKER_STOPPING] = "stopping",
        [WORKER_EXITED] = "exited",
};

static const char *esc(const char *in, char *buf, size_t size) {
        /* spaces separate fields: escape them too; "" is written as "-" */
        char tmp[STATE_STRING_MAX * 4];
        StrBuf b;
        if (!*in)
                return "-";
        control_escape(in, tmp, sizeof(tmp));
        strbuf_init_fixed(&b, buf, size);
        for (const char *p = tmp; *p; p++)
                if (*p == ' ' || (*p == '-' && p == tmp && p[1] == '\0'))
                        strbuf_printf(&b, "\\x%02x", (unsigned char) *p);
                else
                        strbuf_append(&b, p, 1);
        return buf;
}

static void unesc(const char *in, char *out, size_t size) {
        if (strcmp(in, "-") == 0) {
                out[0] = '\0';
                return;
        }
        char *tmp = strdup(in);
        if (!tmp) {
                out[0] = '\0';
                return;
        }
        control_unescape(tmp);
        size_t n = strnlen(tmp, size - 1);
        memcpy(out, tmp, n);
        out[n] = '\0';
        free(tmp);
}

int state_write(const State *s, FILE *f) {
        char a[STATE_STRING_MAX * 4], b[STATE_STRING_MAX * 4];

        fprintf(f, "sockherd-state %d\n", STATE_VERSION);
        fprintf(f, "generation %" PRIu64 " %" PRIu64 "\n", s->generation, s->last_generation);
        fprintf(f, "requests %" PRIu64 "\n", s->requests);
        fprintf(f, "flags %d %d\n", s->announced_ready, s->passed_in);
        fprintf(f, "reload-error %s\n", esc(s->reload_error, a, sizeof(a)));
        fprintf(f, "notify %d %s\n", s->notify_fd, esc(s->notify_address, a, sizeof(a)));
        fprintf(f, "control %d %s\n", s->control_fd, esc(s->control_path, a, sizeof(a)));
        if (s->control_uid >= 0)
                fprintf(f, "control-uid %" PRId64 "\n", s->control_uid);
        /* a record older readers skip: they resolve the directory again */
        if (s->working_directory_resolved[0])
                fprintf(f, "working-directory %s %s\n", esc(s->working_directory, a, sizeof(a)),
                        esc(s->working_directory_resolved, b, sizeof(b)));
        if (s->http_fd >= 0)
                fprintf(f, "http %d %s\n", s->http_fd, esc(s->http_path, a, sizeof(a)));
        for (size_t i = 0; i < s->n_sockets; i++)
                /* the backlog last: older readers ignore it */
                fprintf(f, "socket %d %s %s %u\n", s->sockets[i].fd, esc(s->sockets[i].name, a, sizeof(a)),
                        esc(s->sockets[i].unlink_path, b, sizeof(b)), s->sockets[i].backlog_taken);
        fprintf(f, "slots %u\n", s->n_slots);
        for (unsigned i = 0; i < s->n_slots; i++)
                /* the lane last: older readers ignore it */
                fprintf(f, "slot %u %u %u %u\n", i, s->slots[i].restarts, s->slots[i].backoff_failures,
                        s->slots[i].lane_flip);
        for (size_t i = 0; i < s->n_workers; i++) {
                const StateWorker *w = &s->workers[i];
                fprintf(f, "worker %s %u %d %" PRIu64 " %s %" PRIu64 " %" PRIu64 " %s\n",
                        w->role == STATE_ROLE_RETIRING ? "retiring" : "serving", w->slot, (int) w->pid,
                        w->generation, state_names[w->state], w->started_usec, w->recycle_at_usec,
                        esc(w->status, a, sizeof(a)));
        }
        for (size_t i = 0; i < s->n_slot_sockets; i++)
                fprintf(f, "slot-socket %u %u %d\n", s->slot_sockets[i].slot, s->slot_sockets[i].index,
                        s->slot_sockets[i].fd);
        if (s->balance[0])
                fprintf(f, "balance %s %s\n", esc(s->balance, a, sizeof(a)), esc(s->balance_reason, b, sizeof(b)));
        for (size_t i = 0; i < s->n_balancers; i++) {
                fprintf(f, "balancer %u", s->balancers[i].index);
                for (size_t k = 0; k < STATE_BALANCER_FDS; k++)
                        fprintf(f, " %d", s->balancers[i].fds[k]);
                fprintf(f, "\n");
        }
        for (size_t i = 0; i < s->n_drain_sockets; i++)
                fprintf(f, "drain-socket %d %d\n", (int) s->drain_sockets[i].pid, s->drain_sockets[i].fd);
        fprintf(f, "end\n");
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

void state_done(State *s) {
        free(s->sockets);
        free(s->slots);
        free(s->workers);
        free(s->slot_sockets);
        free(s->balancers);
        free(s->drain_sockets);
        *s = (State) {};
}

int state_add_socket(State *s, const StateSocket *sock) {
        return ARRAY_APPEND(s->sockets, s->n_sockets, *sock);
}

int state_add_balancer(State *s, const StateBalancer *b) {
        return ARRAY_APPEND(s->balancers, s->n_balancers, *b);
}

int state_add_drain_socket(State *s, const StateDrainSocket *d) {
        return ARRAY_APPEND(s->drain_sockets, s->n_drain_sockets, *d);
}

int state_add_worker(State *s, const StateWorker *w) {
        return ARRAY_APPEND(s->workers, s->n_workers, *w);
}

int state_add_slot_socket(State *s, const StateSlotSocket *ss) {
        return ARRAY_APPEND(s->slot_sockets, s->n_slot_sockets, *ss);
}

static int parse_state_name(const char *name, WorkerState *ret) {
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (strcmp(name, state_names[i]) == 0) {
                        *ret = (WorkerState) i;
                        return 0;
                }
        return -EINVAL;
}

#define FAIL(...) do { r = error_set(err, -EBADMSG, __VA_ARGS__); goto fail; } while (0)

int state_read(FILE *f, State *ret, ErrorText *err) {
        State s = { .notify_fd = -1, .control_fd = -1, .control_uid = -1, .http_fd = -1 };
        char line[STATE_STRING_MAX * 8], a[STATE_STRING_MAX * 4], b[STATE_STRING_MAX * 4], c[64];
        unsigned lineno = 0;
        bool ended = false, slots_seen = false;
        int r;

        while (!ended && fgets(line, sizeof(line), f)) {
                lineno++;
                size_t len = strlen(line);
                if (len == 0 || line[len - 1] != '\n')
                        FAIL("state line %u: too long or not terminated", lineno);
                line[--len] = '\0';

                char type[32];
                if (sscanf(line, "%31s", type) != 1)
                        FAIL("state line %u: empty", lineno);
                const char *rest = line + strlen(type);

                if (lineno == 1) {
                        if (strcmp(type, "sockherd-state") != 0 || sscanf(rest, "%u", &s.version) != 1)
                                FAIL("state line 1: not a sockherd state");
                        if (s.version < 1 || s.version > STATE_VERSION)
                                FAIL("state version %u is not supported (this sockherd reads 1 to %d)",
                                     s.version, STATE_VERSION);
                        continue;
                }

                if (strcmp(type, "end") == 0)
                        ended = true;
                else if (strcmp(type, "generation") == 0) {
                        if (sscanf(rest, "%" SCNu64 " %" SCNu64, &s.generation, &s.last_generation) != 2)
                                FAIL("state line %u: bad generation record", lineno);
                } else if (strcmp(type, "requests") == 0) {
                        if (sscanf(rest, "%" SCNu64, &s.requests) != 1)
                                FAIL("state line %u: bad requests record", lineno);
                } else if (strcmp(type, "flags") == 0) {
                        int x, y;
                        if (sscanf(rest, "%d %d", &x, &y) != 2)
                                FAIL("state line %u: bad flags record", lineno);
                        s.announced_ready = x;
                        s.passed_in = y;
                } else if (strcmp(type, "reload-error") == 0) {
                        if (sscanf(rest, " %2047s", a) != 1)
                                FAIL("state line %u: bad reload-error record", lineno);
                        unesc(a, s.reload_error, sizeof(s.reload_error));
                } else if (strcmp(type, "notify") == 0) {
                        if (sscanf(rest, "%d %2047s", &s.notify_fd, a) != 2 || s.notify_fd < 0)
                                FAIL("state line %u: bad notify record", lineno);
                        unesc(a, s.notify_address, sizeof(s.notify_address));
                } else if (strcmp(type, "control") == 0) {
                        if (sscanf(rest, "%d %2047s", &s.control_fd, a) != 2)
                                FAIL("state line %u: bad control record", lineno);
                        unesc(a, s.control_path, sizeof(s.control_path));
                } else if (strcmp(type, "control-uid") == 0) {
                        if (sscanf(rest, "%" SCNd64, &s.control_uid) != 1 || s.control_uid < 0 ||
                            s.control_uid > UINT32_MAX - 1)
                                FAIL("state line %u: bad control-uid record", lineno);
                } else if (strcmp(type, "working-directory") == 0) {
                        if (sscanf(rest, "%2047s %2047s", a, b) != 2)
                                FAIL("state line %u: bad working-directory record", lineno);
                        unesc(a, s.working_directory, sizeof(s.working_directory));
                        unesc(b, s.working_directory_resolved, sizeof(s.working_directory_resolved));
                        if (s.working_directory_resolved[0] != '/')
                                FAIL("state line %u: bad working-directory record", lineno);
                } else if (strcmp(type, "http") == 0) {
                        if (sscanf(rest, "%d %2047s", &s.http_fd, a) != 2 || s.http_fd < 0)
                                FAIL("state line %u: bad http record", lineno);
                        unesc(a, s.http_path, sizeof(s.http_path));
                } else if (strcmp(type, "socket") == 0) {
                        StateSocket sock = {};
                        if (sscanf(rest, "%d %2047s %2047s %u", &sock.fd, a, b, &sock.backlog_taken) < 3 ||
                            sock.fd < 0)
                                FAIL("state line %u: bad socket record", lineno);
                        unesc(a, sock.name, sizeof(sock.name));
                        unesc(b, sock.unlink_path, sizeof(sock.unlink_path));
                        if ((r = state_add_socket(&s, &sock)) < 0)
                                FAIL("out of memory");
                } else if (strcmp(type, "slots") == 0) {
                        if (slots_seen || sscanf(rest, "%u", &s.n_slots) != 1 || s.n_slots > 1024)
                                FAIL("state line %u: bad slots record", lineno);
                        slots_seen = true;
                        s.slots = calloc(s.n_slots ? s.n_slots : 1, sizeof(StateSlot));
                        if (!s.slots)
                                FAIL("out of memory");
                } else if (strcmp(type, "slot") == 0) {
                        unsigned i, restarts, failures, flip = 0;
                        int n = sscanf(rest, "%u %u %u %u", &i, &restarts, &failures, &flip);
                        if (!slots_seen || n < 3 || i >= s.n_slots || flip > 1)
                                FAIL("state line %u: bad slot record", lineno);
                        s.slots[i] = (StateSlot) { restarts, failures, flip };
                } else if (strcmp(type, "worker") == 0) {
                        StateWorker w = {};
                        int pid;
                        if (sscanf(rest, "%31s %u %d %" SCNu64 " %63s %" SCNu64 " %" SCNu64 " %2047s", b, &w.slot,
                                   &pid, &w.generation, c, &w.started_usec, &w.recycle_at_usec, a) != 8 ||
                            pid <= 1 || parse_state_name(c, &w.state) < 0 ||
                            (strcmp(b, "serving") != 0 && strcmp(b, "retiring") != 0))
                                FAIL("state line %u: bad worker record", lineno);
                        if (!slots_seen || (strcmp(b, "serving") == 0 && w.slot >= s.n_slots))
                                FAIL("state line %u: worker in slot %u, but there are %u slots", lineno, w.slot, s.n_slots);
                        w.pid = pid;
                        w.role = strcmp(b, "retiring") == 0 ? STATE_ROLE_RETIRING : STATE_ROLE_SERVING;
                        unesc(a, w.status, sizeof(w.status));
                        if ((r = state_add_worker(&s, &w)) < 0)
                                FAIL("out of memory");
                }
                else if (strcmp(type, "slot-socket") == 0) {
                        StateSlotSocket ss;
                        if (!slots_seen || sscanf(rest, "%u %u %d", &ss.slot, &ss.index, &ss.fd) != 3 ||
                            ss.slot >= s.n_slots || ss.fd < 0 || ss.index > 64)
                                FAIL("state line %u: bad slot-socket record", lineno);
                        if ((r = state_add_slot_socket(&s, &ss)) < 0)
                                FAIL("out of memory");
                }
                else if (strcmp(type, "balance") == 0) {
                        if (sscanf(rest, "%2047s %2047s", a, b) != 2 || strlen(a) >= sizeof(s.balance))
                                FAIL("state line %u: bad balance record", lineno);
                        unesc(a, s.balance, sizeof(s.balance));
                        unesc(b, s.balance_reason, sizeof(s.balance_reason));
                } else if (strcmp(type, "balancer") == 0) {
                        StateBalancer sb;
                        int *d = sb.fds;
                        if (sscanf(rest, "%u %d %d %d %d %d %d", &sb.index, &d[0], &d[1], &d[2], &d[3], &d[4],
                                   &d[5]) != 1 + STATE_BALANCER_FDS || sb.index > 64)
                                FAIL("state line %u: bad balancer record", lineno);
                        for (size_t k = 0; k < STATE_BALANCER_FDS; k++)
                                if (d[k] < 0)
                                        FAIL("state line %u: bad balancer record", lineno);
                        if ((r = state_add_balancer(&s, &sb)) < 0)
                                FAIL("out of memory");
                }
                else if (strcmp(type, "drain-socket") == 0) {
                        int pid, fd;
                        if (sscanf(rest, "%d %d", &pid, &fd) != 2 || pid <= 1 || fd < 0)
                                FAIL("state line %u: bad drain-socket record", lineno);
                        if ((r = state_add_drain_socket(&s, &(StateDrainSocket) { pid, fd })) < 0)
                                FAIL("out of memory");
                }
                /* anything else: a record of a newer writer; skipped */
        }
        if (lineno == 0)
                FAIL("state is empty");
        if (!ended)
                FAIL("state ends early, after line %u (no 'end' record)", lineno);
        if (s.notify_fd < 0 || !slots_seen)
                FAIL("state lacks its notify or slots record");

        *ret = s;
        return 0;

fail:
        state_done(&s);
        return r;
}
