/* Journal-or-stderr logging (see log.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-login.h>

#include "sockherd/log.h"

static bool use_journal;
static char *journal_unit; /* our systemd unit under journald, for the workers' streams */
static int max_level = LOG_INFO;
static char identifier[80] = "sockherd";

/* systemd sets JOURNAL_STREAM=DEV:INODE when stderr is the journal stream */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

bool log_stderr_is_journal(void) {
        return use_journal;
}

const char *log_journal_unit(void) {
        return journal_unit;
}

void log_setup(const char *name) {
        if (name && strcmp(name, "sockherd") != 0)
                snprintf(identifier, sizeof(identifier), "sockherd[%s]", name);
        use_journal = stderr_is_journal();
        if (use_journal && !journal_unit && sd_pid_get_unit(0, &journal_unit) < 0)
                journal_unit = NULL;
}

void log_set_max_level(int level) {
        max_level = level;
}

_printf_(6, 0)
static void log_vemit(const char *message_id, int priority, int slot, pid_t pid, uint64_t generation,
                      const char *fmt, va_list ap) {
        char message[1024];
        int saved_errno = errno;

        if (priority > max_level)
                return;

        vsnprintf(message, sizeof(message), fmt, ap);

        if (use_journal) {
                char f_msg[1100], f_prio[32], f_slot[48], f_pid[48], f_gen[64], f_id[64];
                struct iovec iov[7];
                size_t n = 0;

                snprintf(f_msg, sizeof(f_msg), "MESSAGE=%s", message);
                snprintf(f_prio, sizeof(f_prio), "PRIORITY=%d", priority);
                iov[n++] = (struct iovec) { f_msg, strlen(f_msg) };
                iov[n++] = (struct iovec) { f_prio, strlen(f_prio) };
                iov[n++] = (struct iovec) { (char *) "SYSLOG_IDENTIFIER=sockherd", strlen("SYSLOG_IDENTIFIER=sockherd") };
                if (message_id) {
                        snprintf(f_id, sizeof(f_id), "MESSAGE_ID=%s", message_id);
                        iov[n++] = (struct iovec) { f_id, strlen(f_id) };
                }
                if (slot >= 0) {
                        snprintf(f_slot, sizeof(f_slot), "SOCKHERD_SLOT=%d", slot);
                        snprintf(f_pid, sizeof(f_pid), "SOCKHERD_WORKER_PID=%d", (int) pid);
                        snprintf(f_gen, sizeof(f_gen), "SOCKHERD_GENERATION=%llu", (unsigned long long) generation);
                        iov[n++] = (struct iovec) { f_slot, strlen(f_slot) };
                        if (pid > 0)
                                iov[n++] = (struct iovec) { f_pid, strlen(f_pid) };
                        iov[n++] = (struct iovec) { f_gen, strlen(f_gen) };
                }
                if (sd_journal_sendv(iov, (int) n) >= 0) {
                        errno = saved_errno;
                        return;
                }
        }

        if (use_journal)
                /* the journal refused the entry: the stream still works, and
                 * names us itself, so only the sd-daemon(3) level prefix */
                fprintf(stderr, "<%d>%s\n", priority, message);
        else
                fprintf(stderr, "%s: %s%s\n", identifier,
                        priority <= LOG_ERR ? "error: " : priority == LOG_WARNING ? "warning: " : "",
                        message);
        errno = saved_errno;
}

void log_bare(int priority, const char *fmt, ...) {
        char message[1024];
        va_list ap;

        if (use_journal) {
                va_start(ap, fmt);
                log_vemit(NULL, priority, -1, 0, 0, fmt, ap);
                va_end(ap);
                return;
        }
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s\n", identifier, message);
}

void log_emit(int priority, int slot, pid_t pid, uint64_t generation, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vemit(NULL, priority, slot, pid, generation, fmt, ap); /* errno is intact for %m */
        va_end(ap);
}

void log_emit_id(const char *message_id, int priority, int slot, pid_t pid, uint64_t generation,
                 const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vemit(message_id, priority, slot, pid, generation, fmt, ap);
        va_end(ap);
}
