/* Respawn backoff for one slot: the first restart waits `initial`, each
 * further failure doubles the wait up to `max`, and a worker that ran for
 * at least `stable` resets the count. Pure. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct BackoffPolicy {
        uint64_t initial_usec;
        uint64_t max_usec;
        uint64_t stable_usec;
} BackoffPolicy;

typedef struct Backoff {
        unsigned failures; /* exits in a row that came before a stable run */
} Backoff;

/* This many exits in a row make a crash loop (logged once per streak,
 * shown by status). */
#define BACKOFF_CRASH_LOOP_FAILURES 5

static inline bool backoff_in_crash_loop(const Backoff *b) {
        return b->failures >= BACKOFF_CRASH_LOOP_FAILURES;
}

/* A worker of this slot exited after running for ran_usec: how long to wait
 * before starting the next one. Updates b. */
uint64_t backoff_next(Backoff *b, const BackoffPolicy *p, uint64_t ran_usec);
