/* Logging for the top layer (main, manager). With stderr connected to the
 * journal (JOURNAL_STREAM), messages go to the journal with structured
 * fields SOCKHERD_SLOT, SOCKHERD_WORKER_PID and SOCKHERD_GENERATION so that
 * `journalctl SOCKHERD_SLOT=2` works; otherwise one readable line each on
 * stderr. Library-like modules never log. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <sys/types.h>

#include "sockherd/util.h"

/* Detects whether stderr is the journal (systemd.exec(5): JOURNAL_STREAM
 * names fd 2's device and inode). May run more than once: early with
 * NULL, then with the pool's name, which plain stderr lines carry. */
void log_setup(const char *name);
void log_set_max_level(int level);
/* What log_setup() found. Then journald names each line itself
 * (SYSLOG_IDENTIFIER, _PID): nothing written to stderr may carry a
 * "sockherd: " prefix, and workers get journal streams of their own. */
bool log_stderr_is_journal(void);
/* Under journald, the systemd unit sockherd runs in (sd_pid_get_unit()),
 * or NULL. */
const char *log_journal_unit(void);

/* slot < 0: no worker fields. Returns nothing; see log_error_errno. */
_printf_(5, 6)
void log_emit(int priority, int slot, pid_t pid, uint64_t generation, const char *fmt, ...);

/* The same with a MESSAGE_ID= journal field (one of SOCKHERD_MESSAGE_*
 * below, or NULL for none). */
_printf_(6, 7)
void log_emit_id(const char *message_id, int priority, int slot, pid_t pid, uint64_t generation,
                 const char *fmt, ...);

/* A message that names its problem itself (a config file's error), as
 * "sockherd: MESSAGE" on plain stderr, without the "error: " word of
 * log_error(); under journald an entry of PRIORITY like any other. */
_printf_(2, 3)
void log_bare(int priority, const char *fmt, ...);

/* Stable MESSAGE_IDs, for `journalctl MESSAGE_ID=...` and catalogs. Never
 * change one: outside tools match them. */
#define SOCKHERD_MESSAGE_IMBALANCE       "218b1ce5c4594cf6ac9ef155e5caf4ce" /* load unevenly spread */
#define SOCKHERD_MESSAGE_IMBALANCE_ENDED "cccdfec89a8641da8497bd3f444f9a00" /* spread evenly again */
#define SOCKHERD_MESSAGE_WORKER_FAILED   "1f1ca744d38d4978a7cd637e9bfb7028" /* a worker exited abnormally */
#define SOCKHERD_MESSAGE_CRASH_LOOP      "7a3b5ac0d3c64d7c9c62b1a4e8f0d215" /* a slot keeps failing */
#define SOCKHERD_MESSAGE_RELOAD_STARTED  "d11ebc068bbe460aa84b75d7e4950ff7"
#define SOCKHERD_MESSAGE_RELOAD_DONE     "3803ad73396e441ea3e524ab41c71764"
#define SOCKHERD_MESSAGE_RELOAD_FAILED   "50dc5a1fb1e9448a8290c2d9f4737143"

#define log_debug(...)   log_emit(LOG_DEBUG, -1, 0, 0, __VA_ARGS__)
#define log_info(...)    log_emit(LOG_INFO, -1, 0, 0, __VA_ARGS__)
#define log_notice(...)  log_emit(LOG_NOTICE, -1, 0, 0, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_WARNING, -1, 0, 0, __VA_ARGS__)
#define log_error(...)   log_emit(LOG_ERR, -1, 0, 0, __VA_ARGS__)

/* Log with errno set from r (so %m works) and return r. */
#define log_error_errno(r, ...) ({ int _r_ = (r); errno = -_r_; log_error(__VA_ARGS__); _r_; })
#define log_warning_errno(r, ...) ({ int _r_ = (r); errno = -_r_; log_warning(__VA_ARGS__); _r_; })
