/* The control socket server: accepts clients on a unix stream socket,
 * checks who they are (SO_PEERCRED), reads one request line with a size
 * limit and a timeout, hands it to the manager's handler, and writes the
 * reply without ever blocking. A client that misbehaves gets an error and
 * is closed; nothing a client does can stop the server. When the process
 * is out of file descriptors, one kept in reserve serves one client at a
 * time, and accepting pauses instead of spinning. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "sockherd/control-protocol.h"
#include "sockherd/error.h"

typedef struct ControlServer ControlServer;
typedef struct ControlClient ControlClient;

typedef struct ControlHandlers {
        /* A complete, well-formed request. Reply now with control_client_reply()
         * or keep the client and reply later. */
        void (*request)(ControlClient *c, char **argv, int argc, void *userdata);
        /* A client that was kept is gone (it hung up): forget it. */
        void (*gone)(ControlClient *c, void *userdata);
        /* Something worth a log line happened (a refused peer, a bad request). */
        void (*event)(const char *message, void *userdata);
} ControlHandlers;

/* Takes ownership of the listening fd. Root and `owner` may connect;
 * group: also members of this group (-1: nobody else). owner is the uid
 * the manager was started as: a manager that dropped root to the workers'
 * user does not let its workers in. */
int control_server_new(sd_event *e, int fd, uid_t owner, gid_t group, const ControlHandlers *h, void *userdata,
                       ControlServer **ret);
ControlServer *control_server_free(ControlServer *s);
/* The listening fd (still owned by the server). */
int control_server_fd(const ControlServer *s);

/* Send the reply and close the client; the reply is consumed. */
void control_client_reply(ControlClient *c, ControlReply *reply);
/* Shorthand for an error or a bare ok. */
void control_client_reply_error(ControlClient *c, const char *error);

/* Bind a control socket at path (replacing a stale socket file; -EADDRINUSE
 * when a live one answers there), mode 0600 or 0660 with a group (set
 * through the umask, the group without following links). Creates the
 * parent directory when missing. Run as root, refuses (-EPERM) a directory
 * that is not root's or that others can write to. Returns the fd; on some
 * errors why holds a sentence that names the directory or file ("" for
 * the others). */
int control_socket_bind(const char *path, gid_t group, ErrorText *why);

/* Where the control socket goes when nothing says otherwise:
 * $RUNTIME_DIRECTORY/control under systemd, /run/sockherd/NAME/control as
 * root, $XDG_RUNTIME_DIR/sockherd/NAME/control otherwise. NULL when there
 * is no sensible place. A client (for_client) takes the system pool's
 * socket when it exists, else its user's. */
char *control_default_path(const char *name, bool for_client);

/* The directory of the default control sockets: /run/sockherd (system) or
 * $XDG_RUNTIME_DIR/sockherd; NULL when there is none. */
char *control_dir(bool system);
