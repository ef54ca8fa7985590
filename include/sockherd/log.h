/* Logging for the top layer (main, manager). With stderr connected to the
 * journal (JOURNAL_STREAM), messages go to the journal with structured
 * fields SOCKHERD_SLOT, SOCKHERD_WORKER_PID and SOCKHERD_GENERATION so that
 * `journalctl SOCKHERD_SLOT=2` works; otherwise one readable line each on
 * stderr. Library-like modules never log. */
#pragma once

#include <stdint.h>
#include <syslog.h>
#include <sys/types.h>

#include "sockherd/util.h"

void log_setup(const char *name);
void log_set_max_level(int level);

/* slot < 0: no worker fields. Returns nothing; see log_error_errno. */
_printf_(5, 6)
void log_emit(int priority, int slot, pid_t pid, uint64_t generation, const char *fmt, ...);

#define log_debug(...)   log_emit(LOG_DEBUG, -1, 0, 0, __VA_ARGS__)
#define log_info(...)    log_emit(LOG_INFO, -1, 0, 0, __VA_ARGS__)
#define log_notice(...)  log_emit(LOG_NOTICE, -1, 0, 0, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_WARNING, -1, 0, 0, __VA_ARGS__)
#define log_error(...)   log_emit(LOG_ERR, -1, 0, 0, __VA_ARGS__)

/* Log with errno set from r (so %m works) and return r. */
#define log_error_errno(r, ...) ({ int _r_ = (r); errno = -_r_; log_error(__VA_ARGS__); _r_; })
#define log_warning_errno(r, ...) ({ int _r_ = (r); errno = -_r_; log_warning(__VA_ARGS__); _r_; })
