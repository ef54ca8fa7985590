/* sd-event helpers (see event-util.h). */
#include "sockherd/event-util.h"

int event_reset_time_relative(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                              sd_event_time_handler_t cb, void *userdata) {
        if (!*s)
                return sd_event_add_time_relative(e, s, CLOCK_MONOTONIC, usec, accuracy, cb, userdata);
        int r = sd_event_source_set_time_relative(*s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}
