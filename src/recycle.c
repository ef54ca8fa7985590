/* Which worker to recycle (see recycle.h). */
#include "sockherd/recycle.h"

int recycle_pick(const RecycleCandidate *c, size_t n, uint64_t now_usec, RecycleReason *ret_reason) {
        int oldest = -1;

        *ret_reason = RECYCLE_NONE;
        for (size_t i = 0; i < n; i++)
                if (c[i].ready && c[i].recycle_at_usec && now_usec >= c[i].recycle_at_usec &&
                    (oldest < 0 || c[i].recycle_at_usec < c[oldest].recycle_at_usec))
                        oldest = (int) i;
        if (oldest >= 0) {
                *ret_reason = RECYCLE_LIFETIME;
                return oldest;
        }
        for (size_t i = 0; i < n; i++)
                if (c[i].ready && c[i].rss_known && c[i].max_memory_bytes && c[i].rss_bytes > c[i].max_memory_bytes) {
                        *ret_reason = RECYCLE_MEMORY;
                        return (int) i;
                }
        return -1;
}
