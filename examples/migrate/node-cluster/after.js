// AFTER: the app of before.js as a sockherd worker. The cluster code is
// gone: sockherd forks the workers, respawns them and owns the port.
//
//     sockherd -l 127.0.0.1:8080 -w 4 --ready notify -- node examples/migrate/node-cluster/after.js
//
// - the listening socket is fd 3: server.listen({ fd: 3 }, 4096) (without
//   the backlog, Node calls listen() with 511 and shrinks the queue sockherd
//   set up, for every worker; { fd: 3, backlog: 4096 } does not work: Node
//   ignores `backlog` in the options object when given an fd);
// - once listening it says READY=1 by running `systemd-notify --ready`
//   (Node cannot send on a unix datagram socket itself);
// - SIGTERM: stop accepting, let the requests in flight finish, answer the
//   next request of each keep-alive connection with "Connection: close",
//   close the connections that stay idle for 2 s (our FIN first), exit 0;
//   never close an idle connection its client may be sending on right now
//   (examples/node/server.js does the same, with more comments).
//
// "/slow" answers after one second, to watch a graceful stop finish it.
'use strict';

const http = require('node:http');
const net = require('node:net');
const { execFile } = require('node:child_process');

const slot = process.env.SOCKHERD_SLOT;
const generation = process.env.SOCKHERD_GENERATION;

if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
  console.error('no listening socket passed (LISTEN_FDS/LISTEN_PID); run me under sockherd');
  process.exit(1);
}
// The socket is ours, not for child processes (systemd-notify among them).
delete process.env.LISTEN_PID;
delete process.env.LISTEN_FDS;
delete process.env.LISTEN_FDNAMES;

const STOP_IDLE_GRACE_MS = 2000;
let stopping = false;
const sockets = new Set();
const busy = new Map(); // socket -> requests being answered on it

const server = http.createServer((req, res) => {
  drainTrack(req.socket, res);
  const answer = () => res.end(`hello from pid ${process.pid} slot ${slot} generation ${generation}\n`);
  if (req.url === '/slow')
    setTimeout(answer, 1000);
  else
    answer();
});

server.listen({ fd: 3 }, 4096, () => {
  if (process.env.NOTIFY_SOCKET)
    execFile('systemd-notify', ['--ready'], (err) => {
      if (err)
        console.error(`systemd-notify --ready: ${err.message}`);
    });
});

// Draining without racing keep-alive clients.
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => { sockets.delete(socket); busy.delete(socket); });
  if (stopping)
    closeIfIdle(socket);
});

function drainTrack(socket, res) {
  busy.set(socket, (busy.get(socket) || 0) + 1);
  if (stopping)
    res.setHeader('Connection', 'close'); // Node closes the connection after this answer
  res.on('close', () => {
    const n = busy.get(socket) - 1;
    if (n > 0)
      return busy.set(socket, n);
    busy.delete(socket);
    if (stopping)
      closeIfIdle(socket);
  });
}

function closeIfIdle(socket) {
  if (busy.has(socket) || !socket.writable)
    return; // answering, or already closing
  const seen = socket.bytesRead;
  setTimeout(() => {
    if (busy.has(socket) || !socket.writable)
      return;
    if (socket.bytesRead !== seen)
      return closeIfIdle(socket); // a request is arriving: wait for it
    socket.end(); // our FIN first; Node reads on until the client's
    setTimeout(() => socket.destroy(), 2000).unref();
  }, STOP_IDLE_GRACE_MS).unref();
}

process.on('SIGTERM', () => {
  stopping = true;
  // net.Server's close() only stops accepting; http.Server's (Node >= 19)
  // also destroys every idle keep-alive connection at once.
  net.Server.prototype.close.call(server, () => process.exit(0)); // once the last connection is gone
  for (const socket of sockets)
    closeIfIdle(socket);
});
