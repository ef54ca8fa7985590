/* The /health verdict and its JSON body (see health.h). */
#include <inttypes.h>
#include <stdio.h>

#include "sockherd/health.h"

HealthState health_evaluate(const HealthInput *in) {
        if (in->stopping)
                return HEALTH_STOPPING;
        if (in->draining)
                return HEALTH_DRAINING;
        if (in->ready < in->min_ready)
                return HEALTH_NOT_READY;
        return HEALTH_READY;
}

const char *health_state_to_string(HealthState s) {
        switch (s) {
        case HEALTH_READY:     return "ready";
        case HEALTH_NOT_READY: return "not-ready";
        case HEALTH_DRAINING:  return "draining";
        case HEALTH_STOPPING:  return "stopping";
        }
        return "?";
}

int health_http_status(HealthState s) {
        return s == HEALTH_READY ? 200 : 503;
}

int health_format(const HealthInput *in, char *buf, size_t size) {
        HealthState s = health_evaluate(in);
        /* every string here is one of ours: nothing to escape */
        snprintf(buf, size,
                 "{\"status\":\"%s\",\"ready\":%u,\"wanted\":%u,\"min_ready\":%u,\"generation\":%" PRIu64
                 ",\"reload\":\"%s\"}\n",
                 health_state_to_string(s), in->ready, in->wanted, in->min_ready, in->generation,
                 in->reload ? in->reload : "idle");
        return health_http_status(s);
}
