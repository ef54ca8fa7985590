/* Start-up's give-up rules, pure: from the pool's slots and a few facts,
 * whether sockherd goes on retrying or exits (and with what). */
#pragma once

#include <stdbool.h>

#include "sockherd/pool.h"

typedef enum StartVerdict {
        START_GO_ON,            /* keep respawning */
        START_CANNOT_RUN,       /* the command cannot run (126/127 every time): exit 2 */
        START_NEVER_READY,      /* it runs but never gets ready: exit 1 */
} StartVerdict;

typedef struct StartFacts {
        unsigned attempts;      /* start-attempts; 0: never give up */
        bool restored;          /* started from a re-exec: start-up was the old image's */
        bool transaction;       /* a reload or restart runs: its failures are its own */
        bool stopping;
        unsigned alive;         /* workers running now */
        bool command_ran;       /* some worker is known to have run the command */
        bool worker_was_ready;  /* some worker of this image was ready once */
} StartFacts;

/* A failure that passes (a binary replaced while it was executed, EAGAIN,
 * a database not up yet) gets `attempts` tries per slot to go away; neither
 * rule applies after a re-exec, during a reload or a stop, nor while any
 * worker runs. START_CANNOT_RUN when every slot's last `attempts` workers
 * exited with 126/127 and no worker ever ran the command;
 * START_NEVER_READY when every slot's worker exited `attempts` times and
 * none was ever ready. */
StartVerdict start_verdict(const StartFacts *f, const Slot *slots, unsigned n_slots);
