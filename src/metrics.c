/* Fairness math and the imbalance detector (see metrics.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/metrics.h"
#include "sockherd/strbuf.h"
#include "sockherd/util.h"

void fairness_compute(const double *values, size_t n, Fairness *ret) {
        double total = 0, sumsq = 0, max = 0, min = 0;

        for (size_t i = 0; i < n; i++) {
                double x = values[i] > 0 ? values[i] : 0;
                total += x;
                sumsq += x * x;
                if (i == 0 || x > max)
                        max = x;
                if (i == 0 || x < min)
                        min = x;
        }
        *ret = (Fairness) { .n = n, .total = total, .jain = 1.0 };
        if (n == 0 || total <= 0)
                return;
        ret->mean = total / (double) n;
        ret->max_share = max / total;
        ret->max_ratio = max / ret->mean;
        ret->min_ratio = min / ret->mean;
        ret->jain = total * total / ((double) n * sumsq);
}

void imbalance_init(ImbalanceDetector *d, const ImbalanceParams *params) {
        *d = (ImbalanceDetector) { .params = params ? *params : IMBALANCE_PARAMS_DEFAULT };
        if (d->params.intervals == 0)
                d->params.intervals = 1;
}

void imbalance_done(ImbalanceDetector *d) {
        free(d->slots);
        d->slots = NULL;
        d->n_slots = 0;
}

static ImbalanceKind classify(double x, double mean, const ImbalanceParams *p) {
        if (x < p->low * mean)
                return IMBALANCE_STARVED;
        if (x >= p->high * mean)
                return IMBALANCE_OVERLOADED;
        return IMBALANCE_NONE;
}

static void name_slot(ImbalanceVerdict *v, ImbalanceKind kind, unsigned slot) {
        if (kind == IMBALANCE_STARVED) {
                if (v->n_starved < IMBALANCE_NAMED_MAX)
                        v->starved[v->n_starved] = slot;
                v->n_starved++;
        } else {
                if (v->n_overloaded < IMBALANCE_NAMED_MAX)
                        v->overloaded[v->n_overloaded] = slot;
                v->n_overloaded++;
        }
}

int imbalance_update(ImbalanceDetector *d, const ImbalanceInput *in, size_t n, uint64_t interval_usec,
                     ImbalanceVerdict *ret) {
        const ImbalanceParams *p = &d->params;
        ImbalanceVerdict v = {};
        unsigned top = 0;

        for (size_t i = 0; i < n; i++)
                if (in[i].slot + 1 > top)
                        top = in[i].slot + 1;
        if (top > d->n_slots) {
                ImbalanceSlot *ns = realloc(d->slots, top * sizeof(ImbalanceSlot));
                if (!ns)
                        return -ENOMEM;
                memset(ns + d->n_slots, 0, (top - d->n_slots) * sizeof(ImbalanceSlot));
                d->slots = ns;
                d->n_slots = top;
        }
        bool *seen = calloc(d->n_slots ? d->n_slots : 1, sizeof(bool));
        if (!seen)
                return -ENOMEM;

        double cpu_total = 0, conn_total = 0;
        for (size_t i = 0; i < n; i++) {
                cpu_total += (double) in[i].cpu_usec;
                conn_total += in[i].connections;
        }
        double cpu_mean = n ? cpu_total / (double) n : 0, conn_mean = n ? conn_total / (double) n : 0;
        bool busy_cpu = n >= 2 && interval_usec > 0 && cpu_total > p->busy_cpu * (double) interval_usec;
        bool busy_conn = n >= 2 && conn_total > 0 && conn_mean >= p->busy_connections;
        bool any_out = false;
        v.busy = busy_cpu || busy_conn;

        for (size_t i = 0; i < n; i++) {
                ImbalanceKind kind = IMBALANCE_NONE;
                if (busy_cpu)
                        kind = classify((double) in[i].cpu_usec, cpu_mean, p);
                if (kind == IMBALANCE_NONE && busy_conn) {
                        double dev = in[i].connections - conn_mean;
                        if (dev * dev >= p->conn_sigmas * p->conn_sigmas * conn_mean)
                                kind = classify(in[i].connections, conn_mean, p);
                }
                ImbalanceSlot *s = &d->slots[in[i].slot];
                seen[in[i].slot] = true;
                if (s->pid != in[i].pid)
                        *s = (ImbalanceSlot) { .pid = in[i].pid };
                if (kind == IMBALANCE_NONE)
                        s->streak = 0;
                else if (kind == s->kind)
                        s->streak++;
                else
                        s->streak = 1;
                s->kind = kind;
                if (kind != IMBALANCE_NONE)
                        any_out = true;
                if (kind != IMBALANCE_NONE && s->streak >= p->intervals)
                        name_slot(&v, kind, in[i].slot);
        }
        /* slots without a ready worker this time start over */
        for (unsigned i = 0; i < d->n_slots; i++)
                if (!seen[i])
                        d->slots[i] = (ImbalanceSlot) {};
        free(seen);

        if (v.n_starved + v.n_overloaded > 0) {
                v.started = !d->firing;
                d->firing = true;
                d->quiet = 0;
        } else {
                d->quiet = any_out ? 0 : d->quiet + 1;
                if (d->firing && d->quiet >= p->intervals) {
                        d->firing = false;
                        v.ended = true;
                }
        }
        v.firing = d->firing;
        *ret = v;
        return 0;
}

static void describe_list(StrBuf *b, const unsigned *slots, unsigned n, const char *what) {
        if (n == 0)
                return;
        strbuf_printf(b, "%s%s %u", b->size > 0 ? "; " : "", n == 1 ? "slot" : "slots", slots[0]);
        for (unsigned i = 1; i < n && i < IMBALANCE_NAMED_MAX; i++)
                strbuf_printf(b, ", %u", slots[i]);
        if (n > IMBALANCE_NAMED_MAX)
                strbuf_printf(b, " and %u more", n - IMBALANCE_NAMED_MAX);
        strbuf_printf(b, " %s", what);
}

void imbalance_describe(const ImbalanceVerdict *v, char *buf, size_t size) {
        StrBuf b;

        if (size == 0)
                return;
        strbuf_init_fixed(&b, buf, size);       /* cut to fit: the text is informational */
        if (!v->firing)
                return;
        describe_list(&b, v->starved, v->n_starved, "starved");
        describe_list(&b, v->overloaded, v->n_overloaded, "overloaded");
        if (b.size == 0)
                strbuf_puts(&b, "uneven, settling");
}
