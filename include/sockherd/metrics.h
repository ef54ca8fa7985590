/* Load-distribution math: how evenly a pool's workers share the work, and
 * a detector that says when the sharing is persistently uneven. Pure
 * functions of the numbers they are given: no /proc, no clocks, no logging
 * (sample.h gathers the numbers, the manager acts on the verdict). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How evenly n values (CPU time deltas, connection counts, ...) are spread. */
typedef struct Fairness {
        size_t n;
        double total;
        double mean;
        double max_share;       /* the largest value / total: 1/n is even, 1 is one takes all; 0 when total is 0 */
        double max_ratio;       /* the largest value / mean: 1 is even; 0 when total is 0 */
        double min_ratio;       /* the smallest value / mean; 0 when total is 0 */
        double jain;            /* Jain's index (Σx)² / (n·Σx²): 1 is even, 1/n is one takes all;
                                 * 1 when every value is 0 (nothing to share is shared evenly) */
} Fairness;

void fairness_compute(const double *values, size_t n, Fairness *ret);

/* The detector's thresholds. */
typedef struct ImbalanceParams {
        double busy_cpu;                /* the pool is busy when its workers used more than this many
                                         * CPU-seconds per second in the interval (0.2: 20% of one CPU) */
        double busy_connections;        /* ... or hold at least this many connections per worker on average */
        double low;                     /* starved: below low × the mean (0.5) */
        double high;                    /* overloaded: at or above high × the mean (2.0) */
        double conn_sigmas;             /* a connection count must also be this many standard deviations
                                         * (√mean, as for random arrivals) from the mean: small counts
                                         * scatter by chance */
        unsigned intervals;             /* consecutive uneven intervals before a worker is named (3) */
} ImbalanceParams;

#define IMBALANCE_PARAMS_DEFAULT ((ImbalanceParams) { \
        .busy_cpu = 0.2, .busy_connections = 2.0, .low = 0.5, .high = 2.0, \
        .conn_sigmas = 2.0, .intervals = 3, })

/* One worker in one interval. */
typedef struct ImbalanceInput {
        unsigned slot;
        pid_t pid;                      /* a new pid in a slot starts its count over */
        uint64_t cpu_usec;              /* CPU time used in the interval */
        unsigned connections;           /* connections it holds now */
} ImbalanceInput;

typedef enum ImbalanceKind {
        IMBALANCE_NONE,
        IMBALANCE_STARVED,
        IMBALANCE_OVERLOADED,
} ImbalanceKind;

typedef struct ImbalanceSlot {
        pid_t pid;
        unsigned streak;                /* consecutive intervals out of band */
        ImbalanceKind kind;             /* of the current streak */
} ImbalanceSlot;

typedef struct ImbalanceDetector {
        ImbalanceParams params;
        ImbalanceSlot *slots;
        unsigned n_slots;
        unsigned quiet;                 /* consecutive intervals with no worker out of band */
        bool firing;
} ImbalanceDetector;

/* The verdict of one interval. Slots are named in the arrays (up to
 * IMBALANCE_NAMED_MAX of each kind; the counts are exact). */
#define IMBALANCE_NAMED_MAX 16
typedef struct ImbalanceVerdict {
        bool busy;                      /* was the pool busy in this interval */
        bool firing;                    /* some worker is persistently out of band */
        bool started;                   /* it began firing with this interval */
        bool ended;                     /* it stopped firing with this interval */
        unsigned n_starved, n_overloaded;
        unsigned starved[IMBALANCE_NAMED_MAX];
        unsigned overloaded[IMBALANCE_NAMED_MAX];
} ImbalanceVerdict;

void imbalance_init(ImbalanceDetector *d, const ImbalanceParams *params);
void imbalance_done(ImbalanceDetector *d);

/* Feed one interval of interval_usec. Firing starts when a worker has been
 * out of band for params.intervals consecutive intervals, and ends only
 * after params.intervals consecutive intervals with no worker out of band
 * (the hysteresis). An idle interval counts as an even one. Pools of fewer
 * than 2 workers are never uneven. Returns 0 or -ENOMEM. */
int imbalance_update(ImbalanceDetector *d, const ImbalanceInput *in, size_t n, uint64_t interval_usec,
                     ImbalanceVerdict *ret);

/* "slot 1 starved; slot 0 overloaded" into buf; "" when not firing. */
void imbalance_describe(const ImbalanceVerdict *v, char *buf, size_t size);
