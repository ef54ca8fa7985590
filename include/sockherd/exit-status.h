/* The exit statuses of sockherd and sockherdctl, documented in sockherd(8)
 * and sockherdctl(1). Only the top layer (main, the manager's loop, ctl)
 * exits; lower layers return negative errnos. */
#pragma once

enum {
        /* sockherd: a runtime failure (a socket that cannot be bound, no
         * worker that ever gets ready at start-up, out of memory);
         * sockherdctl: the manager refused or failed the request */
        EXIT_RUNTIME = 1,
        /* usage or configuration error; sockherd: also a command that can
         * never run (126/127 at start-up): restarting cannot help, and the
         * shipped unit has RestartPreventExitStatus=2 */
        EXIT_USAGE = 2,
};
