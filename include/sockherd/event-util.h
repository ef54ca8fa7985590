/* sd-event helpers: the one way a one-shot timer is armed again. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

/* Arm *s to fire once, usec from now (CLOCK_MONOTONIC, with accuracy):
 * the existing source moved and enabled again, or a new one added with cb
 * and userdata. 0 or a negative errno (*s unchanged when adding failed).
 * systemd's own event_reset_time_relative() is the model. */
int event_reset_time_relative(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                              sd_event_time_handler_t cb, void *userdata);
