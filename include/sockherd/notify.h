/* The sd_notify protocol in both directions.
 *
 * Down: the worker-notify socket. One SOCK_DGRAM socket with SO_PASSCRED
 * that workers (and helpers they run, like systemd-notify) send READY=1,
 * STATUS=, STOPPING=1, WATCHDOG=1 and BARRIER=1 to. notify_receive() reads
 * one datagram, closes every fd that came with it and returns the sender's
 * pid with the parsed message; it never logs. (Up: what the manager tells
 * systemd about itself goes through sd_notify() in manager.c.) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NOTIFY_MESSAGE_MAX 4096
#define NOTIFY_STATUS_MAX 256

typedef struct NotifyMessage {
        bool ready;
        bool stopping;
        bool watchdog;
        bool barrier;
        bool has_status;
        char status[NOTIFY_STATUS_MAX];
} NotifyMessage;

/* Parse a datagram's payload. -EBADMSG for embedded NULs or oversize
 * payloads. Unknown fields are ignored, as systemd does. */
int notify_message_parse(const char *buf, size_t len, NotifyMessage *ret);

/* Create and bind the worker-notify socket at an abstract address that is
 * unique to this manager. ret_address is "@..." for NOTIFY_SOCKET. */
int notify_socket_open(const char *name, char **ret_address);

typedef enum NotifyReceive {
        NOTIFY_RECEIVED,       /* *ret_pid and *ret_msg are set */
        NOTIFY_NOTHING,        /* nothing to read */
        NOTIFY_DROPPED,        /* a bad datagram was read and dropped; *ret_pid if known, else 0 */
} NotifyReceive;

/* Read one datagram. Returns a NotifyReceive value, or -errno on a socket
 * error. *ret_reason explains a drop. */
int notify_receive(int fd, pid_t *ret_pid, NotifyMessage *ret_msg, const char **ret_reason);

/* Walk up the process tree from pid (at most 32 levels) and return the
 * first pid for which is_worker() is true, or 0. */
pid_t notify_find_worker(pid_t pid, bool (*is_worker)(pid_t pid, void *userdata), void *userdata);
