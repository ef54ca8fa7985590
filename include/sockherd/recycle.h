/* Which worker to recycle, pure: the most overdue past its max-lifetime
 * (so no slot starves), else the first above its max-memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum RecycleReason {
        RECYCLE_NONE,
        RECYCLE_LIFETIME,
        RECYCLE_MEMORY,
} RecycleReason;

typedef struct RecycleCandidate {
        bool ready;                 /* only ready, serving workers are recycled */
        uint64_t recycle_at_usec;   /* its max-lifetime deadline, 0: none */
        bool rss_known;             /* rss_bytes was sampled this time */
        uint64_t rss_bytes;
        uint64_t max_memory_bytes;  /* 0: no limit */
} RecycleCandidate;

/* The index of the worker to recycle now, or -1; *ret_reason says why. */
int recycle_pick(const RecycleCandidate *c, size_t n, uint64_t now_usec, RecycleReason *ret_reason);
