/* How full a listening socket's accept queue is, and its backlog, as the
 * kernel has them now: TCP (TCP_INFO) and unix stream sockets (sock_diag).
 * A worker's own listen() call changes the backlog; this reads what is in
 * effect, not what was asked for. */
#pragma once

/* Connections waiting to be accepted and the backlog of listening socket
 * fd. 0, or a negative errno (-EOPNOTSUPP for another kind of socket). */
int listen_queue(int fd, unsigned *ret_queued, unsigned *ret_backlog);
