#!/usr/bin/env node
// bench/app.js: the benchmark's Node app for the contenders that listen on a
// port themselves (Node cluster workers, PM2 cluster mode, independent
// processes). Its request path does the same work as examples/node/server.js
// (which sockherd runs): GET/HEAD answer
//     "hello from pid <pid> slot <slot> generation <generation>\n"
// with Content-Type and Content-Length, other methods 405, bodies 400, and
// Connection: close once stopping. It listens on 127.0.0.1:$PORT (in a
// cluster worker the primary owns the socket). SIGTERM/SIGINT (PM2 sends
// SIGINT, bench/node-rolling.js SIGTERM), or a cluster disconnect, stop
// accepting and drain exactly like examples/node/server.js, so every
// contender drains the same way: requests in flight finish with
// "Connection: close"; an idle keep-alive connection gets 2 s to send one
// more request (answered with "Connection: close") and is ended, FIN first,
// only if it stays idle; then it exits 0 (a cluster worker after leaving
// the cluster, see stop()).
'use strict';

const http = require('node:http');
const cluster = require('node:cluster');
const { Drain } = require('../examples/node/drain.js');

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('app.js: set PORT to the port to listen on\n');
  process.exit(1);
}
const slot = process.env.SLOT || process.env.NODE_APP_INSTANCE ||
  (cluster.isWorker ? String(cluster.worker.id) : '-');
const generation = process.env.GENERATION || '-';

let served = 0;
const drain = new Drain({ graceMs: 2000 }); // the same drain as examples/node/server.js

function send(res, status, body, extraHeaders = {}) {
  if (drain.stopping)
    res.setHeader('Connection', 'close');
  res.writeHead(status, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function handle(req, res) {
  res.on('finish', () => { served++; });
  drain.busy(req.socket, res);
  const cl = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (cl !== undefined && !/^0+$/.test(cl))) {
    send(res, 400, 'bad request\n', { Connection: 'close' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  send(res, 200, `hello from pid ${process.pid} slot ${slot} generation ${generation}\n`);
}

const server = http.createServer(handle);
server.requestTimeout = 0;
server.on('error', (err) => {
  process.stderr.write(`app.js: ${err.message}\n`);
  process.exit(1);
});
server.on('connection', drain.track);

function stop() {
  // drain.js: stop accepting, keep the connections (http.Server's close()
  // would also destroy every idle keep-alive connection at once, the race
  // that makes a client see errors during a rolling reload).
  drain.stop([server], () => {
    process.stderr.write(`app.js: pid ${process.pid} slot ${slot} served ${served} requests\n`);
    // A cluster worker leaves the cluster before it exits. With round-robin
    // the primary may have handed it connections after it stopped accepting;
    // such a connection arrives after the close and goes back to the primary
    // for another worker, but only while this worker lives. Its own
    // disconnect() completes once the primary has seen the close (the IPC
    // channel is ordered), so exiting then loses none.
    if (cluster.isWorker && cluster.worker.isConnected()) {
      cluster.worker.once('disconnect', () => process.exit(0));
      cluster.worker.disconnect();
    } else {
      process.exit(0);
    }
  });
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (cluster.isWorker)
  cluster.worker.on('disconnect', stop);

server.listen(port, '127.0.0.1', () => {
  if (typeof process.send === 'function')
    process.send('ready'); // PM2 wait_ready; harmless for a cluster worker
});
