/* What GET /health answers (see http-server.h): the pool's readiness as a
 * load balancer sees it. 200 while at least health-min-ready workers are
 * ready and the manager is neither draining (the drain-delay before a
 * stop) nor stopping; 503 otherwise. The body is one line of JSON with the
 * counts. Pure: the manager fills a HealthInput from its state. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum HealthState {
        HEALTH_READY,           /* 200 */
        HEALTH_NOT_READY,       /* 503: fewer ready workers than min_ready */
        HEALTH_DRAINING,        /* 503: a stop was asked for, the drain-delay runs */
        HEALTH_STOPPING,        /* 503: the workers are being stopped */
} HealthState;

typedef struct HealthInput {
        bool stopping;
        bool draining;
        unsigned ready;         /* serving workers that are ready */
        unsigned wanted;        /* slots the pool should have */
        unsigned min_ready;     /* health-min-ready */
        uint64_t generation;
        const char *reload;     /* "idle", "reloading", "canary", "rolling-back", "restarting" */
} HealthInput;

HealthState health_evaluate(const HealthInput *in);
const char *health_state_to_string(HealthState s);
/* The HTTP status for a state: 200 or 503. */
int health_http_status(HealthState s);
/* The JSON body, newline-terminated, into buf (truncated to size). Returns
 * the HTTP status. */
int health_format(const HealthInput *in, char *buf, size_t size);
