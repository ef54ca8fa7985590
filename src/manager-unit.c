/* What systemd says about the manager's own service, asked over D-Bus
 * without blocking the event loop. Today one question: its stop timeout
 * (TimeoutStopSec=). At a stop the manager gives its workers stop-timeout
 * to drain; when systemd's own timeout is not longer than that, systemd
 * SIGKILLs whatever is still draining first, and stop-timeout is a promise
 * nobody keeps. So a stop-timeout that is not shorter is warned about, at
 * start and after each reload.
 *
 * Asked only when this process is a service's main process (its parent is
 * PID 1 and its unit a .service). The connection goes to PID 1's private
 * socket when the manager runs as root and keeps root; a manager that will
 * drop root uses the system bus like any user (reading a unit's properties
 * needs no privilege), so that it does not carry a root-authenticated
 * channel to PID 1 past the drop. When nothing answers, nothing is checked
 * (logged at debug level). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "manager-internal.h"
#include "sockherd/log.h"
#include "sockherd/parse.h"
#include "sockherd/privileges.h"
#include "sockherd/util.h"

#define SYSTEMD_PRIVATE_BUS "unix:path=/run/systemd/private"

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int bus_connect(bool keeps_root, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (keeps_root) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, SYSTEMD_PRIVATE_BUS);
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r >= 0) {
                        *ret = bus;
                        return 0;
                }
                bus = sd_bus_unref(bus);
        }
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        *ret = bus;
        return 0;
}

void manager_unit_open(Manager *m) {
        _cleanup_free_ char *unit = NULL;
        sd_bus *bus = NULL;

        if (getppid() != 1 || sd_pid_get_unit(0, &unit) < 0 || !ends_with(unit, ".service"))
                return; /* not a system service's main process */
        bool keeps_root = geteuid() == 0 && privileges_keep_reason(m->config, m->balance, 0);
        int r = bus_connect(keeps_root, &bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &m->unit_path);
        if (r < 0) {
                log_debug("cannot ask systemd about %s (%s): stop-timeout is not compared with its TimeoutStopSec=",
                          unit, strerror(-r));
                sd_bus_flush_close_unref(bus);
                return;
        }
        m->bus = bus;
        m->unit = TAKE_PTR(unit);
}

void manager_unit_close(Manager *m) {
        m->unit_query = sd_bus_slot_unref(m->unit_query);
        m->bus = sd_bus_close_unref(m->bus);
        free(m->unit_path);
        m->unit_path = NULL;
        free(m->unit);
        m->unit = NULL;
}

static int on_stop_timeout(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error _unused_) {
        Manager *m = userdata;
        uint64_t usec;
        char a[32], b[32];

        m->unit_query = sd_bus_slot_unref(m->unit_query);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("cannot read TimeoutStopUSec of %s: %s", m->unit, e->message ?: e->name);
                return 0;
        }
        int r = sd_bus_message_read(reply, "v", "t", &usec);
        if (r < 0) {
                log_debug("cannot read TimeoutStopUSec of %s: %s", m->unit, strerror(-r));
                return 0;
        }
        if (usec == 0 || usec == UINT64_MAX)
                return 0; /* no timeout */
        if (m->config->stop_timeout_usec >= usec)
                log_warning("stop-timeout %s is not shorter than %s's TimeoutStopSec= (%s): at a stop, systemd "
                            "kills the workers that are still draining; make stop-timeout shorter or "
                            "TimeoutStopSec= longer", format_duration(m->config->stop_timeout_usec, a), m->unit,
                            format_duration(usec, b));
        return 0;
}

void manager_unit_check_stop_timeout(Manager *m) {
        if (!m->bus)
                return;
        m->unit_query = sd_bus_slot_unref(m->unit_query); /* a newer question replaces an unanswered one */
        int r = sd_bus_call_method_async(m->bus, &m->unit_query, "org.freedesktop.systemd1", m->unit_path,
                                         "org.freedesktop.DBus.Properties", "Get", on_stop_timeout, m, "ss",
                                         "org.freedesktop.systemd1.Service", "TimeoutStopUSec");
        if (r < 0)
                log_debug("cannot ask systemd for TimeoutStopUSec of %s: %s", m->unit, strerror(-r));
}
