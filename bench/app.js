#!/usr/bin/env node
// bench/app.js: the benchmark's Node app for the contenders that listen on a
// port themselves (Node cluster workers, PM2 cluster mode, independent
// processes). Its request path does the same work as examples/node/server.js
// (which sockherd runs): GET/HEAD answer
//     "hello from pid <pid> slot <slot> generation <generation>\n"
// with Content-Type and Content-Length, other methods 405, bodies 400, and
// Connection: close once stopping. It listens on 127.0.0.1:$PORT (in a
// cluster worker the primary owns the socket). SIGTERM/SIGINT, or a cluster
// disconnect, stop accepting, close idle keep-alive connections, finish the
// requests in flight and exit 0.
'use strict';

const http = require('node:http');
const cluster = require('node:cluster');

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('app.js: set PORT to the port to listen on\n');
  process.exit(1);
}
const slot = process.env.SLOT || process.env.NODE_APP_INSTANCE ||
  (cluster.isWorker ? String(cluster.worker.id) : '-');
const generation = process.env.GENERATION || '-';

let served = 0;
let stopping = false;

function send(res, status, body, extraHeaders = {}) {
  if (stopping)
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

function stop() {
  if (stopping)
    return;
  stopping = true;
  server.close(() => {
    process.stderr.write(`app.js: pid ${process.pid} slot ${slot} served ${served} requests\n`);
    process.exit(0);
  });
  server.closeIdleConnections();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (cluster.isWorker)
  cluster.worker.on('disconnect', stop);

server.listen(port, '127.0.0.1', () => {
  if (typeof process.send === 'function')
    process.send('ready'); // PM2 wait_ready; harmless for a cluster worker
});
