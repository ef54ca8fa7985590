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

#include "manager-unit.h"
#include "manager-view.h"
#include "sockherd/log.h"
#include "sockherd/parse.h"
#include "sockherd/privileges.h"
#include "sockherd/util.h"

#define SYSTEMD_PRIVATE_BUS "unix:path=/run/systemd/private"

struct ManagerUnit {
        Manager *manager;
        sd_bus *bus;
        sd_bus_slot *query;     /* an unanswered question */
        char *unit;             /* our service's name, e.g. sockherd@app.service */
        char *path;             /* its D-Bus object path */
};

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

ManagerUnit *manager_unit_new(Manager *m) {
        _cleanup_free_ char *unit = NULL, *path = NULL;
        sd_bus *bus = NULL;
        ManagerView v;

        manager_view(m, &v);
        if (getppid() != 1 || sd_pid_get_unit(0, &unit) < 0 || !ends_with(unit, ".service"))
                return NULL; /* not a system service's main process */
        bool keeps_root = geteuid() == 0 && privileges_keep_reason(v.config, v.balance, 0);
        int r = bus_connect(keeps_root, &bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, v.event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        ManagerUnit *u = r >= 0 ? calloc(1, sizeof(ManagerUnit)) : NULL;
        if (!u) {
                log_debug("cannot ask systemd about %s (%s): stop-timeout is not compared with its TimeoutStopSec=",
                          unit, strerror(r < 0 ? -r : ENOMEM));
                sd_bus_flush_close_unref(bus);
                return NULL;
        }
        *u = (ManagerUnit) { .manager = m, .bus = bus, .unit = TAKE_PTR(unit), .path = TAKE_PTR(path) };
        return u;
}

ManagerUnit *manager_unit_free(ManagerUnit *u) {
        if (!u)
                return NULL;
        sd_bus_slot_unref(u->query);
        sd_bus_close_unref(u->bus);
        free(u->path);
        free(u->unit);
        free(u);
        return NULL;
}

static int on_stop_timeout(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error _unused_) {
        ManagerUnit *u = userdata;
        uint64_t usec;
        char a[32], b[32];
        ManagerView v;

        u->query = sd_bus_slot_unref(u->query);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("cannot read TimeoutStopUSec of %s: %s", u->unit, e->message ?: e->name);
                return 0;
        }
        int r = sd_bus_message_read(reply, "v", "t", &usec);
        if (r < 0) {
                log_debug("cannot read TimeoutStopUSec of %s: %s", u->unit, strerror(-r));
                return 0;
        }
        if (usec == 0 || usec == UINT64_MAX)
                return 0; /* no timeout */
        manager_view(u->manager, &v);
        if (v.config->stop_timeout_usec >= usec)
                log_warning("stop-timeout %s is not shorter than %s's TimeoutStopSec= (%s): at a stop, systemd "
                            "kills the workers that are still draining; make stop-timeout shorter or "
                            "TimeoutStopSec= longer", format_duration(v.config->stop_timeout_usec, a), u->unit,
                            format_duration(usec, b));
        return 0;
}

void manager_unit_check_stop_timeout(ManagerUnit *u) {
        if (!u)
                return;
        u->query = sd_bus_slot_unref(u->query); /* a newer question replaces an unanswered one */
        int r = sd_bus_call_method_async(u->bus, &u->query, "org.freedesktop.systemd1", u->path,
                                         "org.freedesktop.DBus.Properties", "Get", on_stop_timeout, u, "ss",
                                         "org.freedesktop.systemd1.Service", "TimeoutStopUSec");
        if (r < 0)
                log_debug("cannot ask systemd for TimeoutStopUSec of %s: %s", u->unit, strerror(-r));
}
