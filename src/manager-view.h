/* The manager's narrow interface for what answers the outside (the control
 * commands, the HTTP endpoint, the samples, re-exec, systemd's view of our
 * unit): a read-only view of its state and one request function. The
 * Manager's fields are manager.c's alone: those files cannot write them,
 * and the manager's insides can change without them. Questions about
 * slots' sockets go to the balancing object (manager-balance.h) the view
 * hands out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "sockherd/config.h"
#include "sockherd/error.h"
#include "sockherd/listen.h"
#include "sockherd/pool.h"
#include "sockherd/state.h"

typedef struct Manager Manager;
typedef struct ManagerBalance ManagerBalance;
typedef struct ManagerMetrics ManagerMetrics;

/* The running transaction, as status and /health show it. */
typedef struct ReloadSnapshot {
        const char *state;      /* "idle", "reloading", "canary", "rolling-back" or "restarting" */
        uint64_t generation;    /* the generation being rolled out (or back to) */
        unsigned done, total;   /* slots switched of those to switch, in the current direction */
        unsigned canaries;      /* canary slots, 0 when no canary phase */
        uint64_t canary_left_usec; /* canary-time left while it runs */
} ReloadSnapshot;

/* Pointers into the manager: valid until the manager next runs (read them
 * in the callback that asked, keep nothing). */
typedef struct ManagerView {
        sd_event *event;
        const ConfigSource *source;     /* where config came from: to read it again */
        const Config *config;           /* the committed config */
        const Pool *pool;
        const ListenSet *sockets;
        uint64_t generation;            /* the committed generation */
        unsigned workers_wanted;        /* see manager_workers_wanted() */
        bool stopping, draining;
        uid_t control_uid;              /* may give orders besides root */
        Balance balance;                /* the mode in effect */
        const char *balance_reason;
        const char *reload_error;       /* the last reload's failure, "" after a success */
        ReloadSnapshot reload;
        ManagerBalance *balancing;      /* manager-balance.c's object: per-slot queues and
                                         * connections (read them through manager-balance.h) */
        ManagerMetrics *metrics;        /* manager-metrics.c's own object (it may change it) */
} ManagerView;

void manager_view(const Manager *m, ManagerView *ret);
/* Re-exec: the manager's whole state, for the new image (its descriptors
 * stay open). */
int manager_state_record(Manager *m, State *s);
/* The STATUS= line: "4/4 workers ready, generation 3; ..." */
void manager_format_status(const Manager *m, char *buf, size_t size);
uint64_t manager_now_usec(void);

typedef enum ManagerRequestType {
        MANAGER_REQUEST_RELOAD,         /* queued behind a running one */
        MANAGER_REQUEST_RESTART,        /* the slots in `slots`, new before old */
        MANAGER_REQUEST_SCALE,          /* to `workers` slots */
        MANAGER_REQUEST_REEXEC,         /* checked and probed now, executed from the loop */
} ManagerRequestType;

typedef struct ManagerRequest {
        ManagerRequestType type;
        const char *who;                /* for the log: "control request", "SIGHUP" */
        const bool *slots;              /* RESTART: one per slot */
        unsigned workers;               /* SCALE */
} ManagerRequest;

typedef struct ManagerRequestResult {
        uint64_t ticket;        /* RELOAD, RESTART: manager_on_transaction_done() reports it */
        bool running;           /* RELOAD, RESTART: a transaction still runs for it */
        ErrorText error;        /* why it was refused or failed at once */
} ManagerRequestResult;

/* 0 when accepted (RELOAD: also when it failed at once: see result->error
 * and ->running), or a negative errno with result->error saying why:
 * -ESHUTDOWN (stopping), -EBUSY (a transaction runs), -ERANGE, -EPERM
 * (re-exec refused), -ENOMEM. */
int manager_request(Manager *m, const ManagerRequest *req, ManagerRequestResult *result);

/* Called when the transactions up to `covers` ended: ok, or failed with
 * error. One listener (the control socket). */
typedef void (*ManagerDoneHandler)(uint64_t covers, bool ok, const char *error, void *userdata);
void manager_set_done_handler(Manager *m, ManagerDoneHandler handler, void *userdata);

/* The numbers, from manager-metrics.c. */
struct ControlReply;
/* Make the numbers current: the periodic sample when there is one, else a sample now. */
int manager_metrics_refresh(Manager *m);
/* cpu_percent, rss_bytes, connections of pid as PREFIX.KEY */
void manager_metrics_add_worker(Manager *m, struct ControlReply *r, const char *prefix, pid_t pid);
/* imbalance.* */
void manager_metrics_add_pool(Manager *m, struct ControlReply *r);
/* The Prometheus text exposition of the latest sample. */
int manager_metrics_text(Manager *m, char **ret);
