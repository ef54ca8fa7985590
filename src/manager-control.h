/* The control socket's side of the manager (manager-control.c): one object
 * that serves the commands through manager-view.h. */
#pragma once

#include "sockherd/util.h"

typedef struct Manager Manager;
typedef struct ManagerControl ManagerControl;

/* Bind the control socket the config names (or its default), or serve
 * passed_fd (a re-exec handed it over, with the path the old image created,
 * or ""). 0 with *ret NULL when it is off; a negative errno, logged. */
int manager_control_new(Manager *m, int passed_fd, const char *passed_path, ManagerControl **ret);
ManagerControl *manager_control_free(ManagerControl *ctl);
static inline void manager_control_freep(ManagerControl **ctl) {
        manager_control_free(*ctl);
}
/* For the re-exec state: the socket, and the file we created (or NULL). */
int manager_control_fd(const ManagerControl *ctl);
const char *manager_control_path(const ManagerControl *ctl);
