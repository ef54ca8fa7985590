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
#include <sys/socket.h>
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

/* Create the worker-notify socket in a new private directory under base
 * (created 0755 if missing): BASE/notify.XXXXXX/notify, the directory mode
 * 0710 with group `group` (the workers'; -1: ours), so only root, our uid
 * and that group can reach it. ret_address is the path for NOTIFY_SOCKET.
 * -ENAMETOOLONG when base is too long for a socket path. */
int notify_socket_open(const char *base, gid_t group, char **ret_address);

/* Hand the socket's directory to another group (a reload to workers that
 * run with another group). -EINVAL for an abstract address. */
int notify_socket_set_group(const char *address, gid_t group);

/* Remove the socket file and its directory. Abstract addresses (from a
 * re-exec of an older version) have nothing on disk. */
void notify_socket_remove(const char *address);

/* Remove the directories under base that earlier managers left behind
 * (a crash, or a manager that had dropped root and could not remove its
 * own): ours, with no socket bound in them. Only when base is ours and
 * writable by nobody else. Returns how many went. */
unsigned notify_sweep(const char *base);

typedef enum NotifyReceive {
        NOTIFY_RECEIVED,       /* *ret_sender and *ret_msg are set */
        NOTIFY_NOTHING,        /* nothing to read */
        NOTIFY_DROPPED,        /* a bad datagram was read and dropped; ret_sender->pid if known, else 0 */
} NotifyReceive;

/* Read one datagram. Returns a NotifyReceive value, or -errno on a socket
 * error. *ret_sender has the sender's credentials (pid 0 and uid -1 when
 * none came); *ret_reason explains a drop. */
int notify_receive(int fd, struct ucred *ret_sender, NotifyMessage *ret_msg, const char **ret_reason);

/* Walk up the process tree from pid (at most 32 levels) and return the
 * first pid for which is_worker() is true, or 0. */
pid_t notify_find_worker(pid_t pid, bool (*is_worker)(pid_t pid, void *userdata), void *userdata);
