/* The control protocol between the manager and sockherdctl (or any other
 * tool): the one contract shared with the outside, versioned.
 *
 * A client connects to the manager's unix stream socket and sends one line:
 *
 *     sockherd-control/1 COMMAND [ARG]...\n
 *
 * words separated by single spaces, at most CONTROL_REQUEST_MAX bytes. The
 * manager answers with a status line, then zero or more "KEY VALUE" lines,
 * then closes the connection:
 *
 *     sockherd-control/1 ok\n                    or
 *     sockherd-control/1 error MESSAGE\n
 *     name app\n
 *     worker.0.pid 1234\n
 *
 * Keys are dotted words ([a-z0-9_.]); values are escaped so that a line
 * never holds a newline: backslash as \\, newline as \n, tab as \t, other
 * control bytes as \xHH. Commands: status, metrics, reload [--wait],
 * scale N, restart SLOT|all, reexec.
 *
 * status adds, per worker, cpu_percent (of one CPU since the previous
 * sample), rss_bytes and connections (TCP connections on the pool's
 * ports), and for the pool imbalance.cpu_max_share and
 * imbalance.conn_max_share (the busiest ready worker's share, 0 to 1),
 * imbalance.jain_cpu and imbalance.jain_conn (Jain's fairness index, 1 is
 * even), imbalance.warning (the detector's finding, "" when even or when
 * metrics-interval is off). metrics answers one key, "text": the
 * Prometheus text exposition (newlines escaped as every value's are). A request that is malformed, too long, or not finished
 * within CONTROL_REQUEST_TIMEOUT_SEC gets an error reply and is closed.
 *
 * Limits on clients: a reply that the client has not read within
 * CONTROL_WRITE_TIMEOUT_SEC of its start is abandoned and the client
 * closed. At most CONTROL_CLIENTS_MAX clients at once; a uid other than
 * root holds at most CONTROL_CLIENTS_PER_UID of them, and the last
 * CONTROL_CLIENTS_RESERVED are kept for root and the manager's own uid
 * (not for control-group members). A client over a limit is answered
 * "error too many clients" and closed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sockherd/strbuf.h"

#define CONTROL_PROTOCOL "sockherd-control/1"
#define CONTROL_REQUEST_MAX 1024
#define CONTROL_REQUEST_TIMEOUT_SEC 5
#define CONTROL_ARGS_MAX 8
#define CONTROL_WRITE_TIMEOUT_SEC 5
#define CONTROL_CLIENTS_MAX 32
#define CONTROL_CLIENTS_PER_UID 8
#define CONTROL_CLIENTS_RESERVED 2

/* Split a request line (without its newline) into words; checks the
 * protocol word. *ret_argv[0] is the command. Returns the word count, or
 * -EBADMSG for a malformed line, -EPROTO for another protocol version. */
int control_request_parse(char *line, char *ret_argv[static CONTROL_ARGS_MAX + 1]);

/* A reply being built: a growable text buffer. */
typedef struct ControlReply {
        StrBuf text;            /* its error sticks: an append failed, the reply is incomplete */
} ControlReply;

void control_reply_init(ControlReply *r, const char *error);
void control_reply_add(ControlReply *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* control_reply_add truncates a value at 1023 bytes; this takes any length. */
void control_reply_add_text(ControlReply *r, const char *key, const char *value);
void control_reply_done(ControlReply *r);

/* Escape/unescape a value. unescape works in place. control_escape
 * truncates at a whole escape to fit out_size; control_escape_append
 * appends the whole escaped value to b (its error: see strbuf.h). */
void control_escape(const char *in, char *out, size_t out_size);
int control_escape_append(StrBuf *b, const char *in);
void control_unescape(char *s);

/* Client side: parse a whole reply. ret_error points into text (NULL for
 * ok). Calls fn for each KEY VALUE line with the value unescaped. Returns
 * -EBADMSG when the text is not a reply. */
int control_reply_parse(char *text, const char **ret_error,
                        void (*fn)(const char *key, const char *value, void *userdata), void *userdata);
