/* What systemd says about our own unit (manager-unit.c): one object that
 * asks over D-Bus, through manager-view.h. */
#pragma once

typedef struct Manager Manager;
typedef struct ManagerUnit ManagerUnit;

/* When this is a system service's main process: connect to systemd (before
 * dropping root). NULL otherwise, or when it cannot: then the check below
 * does nothing. */
ManagerUnit *manager_unit_new(Manager *m);
ManagerUnit *manager_unit_free(ManagerUnit *u);
/* Ask for the unit's TimeoutStopSec= and warn, when the answer comes, if
 * the committed config's stop-timeout is not shorter. */
void manager_unit_check_stop_timeout(ManagerUnit *u);
