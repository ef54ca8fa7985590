// AFTER: the app of before.js as a sockherd worker. The cluster code is
// gone: sockherd forks the workers, respawns them and owns the port.
//
//     sockherd -l 127.0.0.1:8080 -w 4 --ready notify -- node examples/migrate/node-cluster/after.js
//
// - the listening socket is fd 3: server.listen({ fd: 3 });
// - once listening it says READY=1 by running `systemd-notify --ready`
//   (Node cannot send on a unix datagram socket itself);
// - SIGTERM: stop accepting, close idle keep-alive connections, let the
//   requests in flight finish, exit 0.
//
// "/slow" answers after one second, to watch a graceful stop finish it.
'use strict';

const http = require('node:http');
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

const server = http.createServer((req, res) => {
  const answer = () => res.end(`hello from pid ${process.pid} slot ${slot} generation ${generation}\n`);
  if (req.url === '/slow')
    setTimeout(answer, 1000);
  else
    answer();
});

server.listen({ fd: 3 }, () => {
  if (process.env.NOTIFY_SOCKET)
    execFile('systemd-notify', ['--ready'], (err) => {
      if (err)
        console.error(`systemd-notify --ready: ${err.message}`);
    });
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0)); // runs once the last connection is gone
  server.closeIdleConnections();        // Node >= 18.2; busy ones close after their response
});
