#!/usr/bin/env node
// hello-worker(node): an example sockherd worker written for Node.js 18/20,
// with no npm dependencies. It behaves like examples/hello-worker.c:
//
//  - takes its listening sockets from the manager through the systemd socket
//    activation protocol (fds 3, 4, ... with LISTEN_FDS and LISTEN_PID) and
//    serves HTTP/1.1 on each of them;
//  - answers GET/HEAD with "hello from pid <pid> slot <SOCKHERD_SLOT>
//    generation <SOCKHERD_GENERATION>\n"; "/slow?ms=N" (0..600000) sends the
//    same answer N ms later; other methods get 405; requests with a body get
//    400 and the connection is closed; headers over 8 KiB get 431;
//  - reports readiness: Node cannot send on a unix datagram socket, so when
//    NOTIFY_SOCKET is set it runs `systemd-notify --ready` once listening;
//  - on SIGTERM or SIGINT stops accepting and drains without racing its
//    clients: requests in flight finish, answered with "Connection: close";
//    an idle keep-alive connection gets STOP_IDLE_GRACE_MS (2 s) to send one
//    more request (answered with "Connection: close") and is closed, with
//    our FIN first, only if it stays idle that long (drain.js); then it prints
//    "hello-worker(node): pid <pid> slot <slot> served <n> requests" to
//    stderr and exits 0. (See stop() for why not server.close().)
//
// Run it by hand with:
//     systemd-socket-activate -l 127.0.0.1:8080 node examples/node/server.js
'use strict';

const http = require('node:http');
const { execFile } = require('node:child_process');
const { Drain } = require('./drain.js');

const PROG = 'hello-worker(node)';
const LISTEN_FDS_START = 3;
const MAX_SLOW_MS = 600000;
const MAX_HEADER_BYTES = 8192;
const STOP_IDLE_GRACE_MS = 2000; // at stop: an idle connection may still send one request

const slot = process.env.SOCKHERD_SLOT || '-';
const generation = process.env.SOCKHERD_GENERATION || '-';

function fail(message) {
  process.stderr.write(`${PROG}: ${message}\n`);
  process.exit(1);
}

// The socket activation protocol: LISTEN_FDS=<n> sockets starting at fd 3,
// meant for the process whose pid is LISTEN_PID.
function listenFds() {
  const fds = process.env.LISTEN_FDS;
  const pid = process.env.LISTEN_PID;
  const usage = 'run me under sockherd or systemd-socket-activate';
  if (fds === undefined || fds === '')
    fail(`no listening socket passed (LISTEN_FDS is not set); ${usage}`);
  if (!/^[0-9]+$/.test(fds) || Number(fds) < 1)
    fail(`LISTEN_FDS=${JSON.stringify(fds)} is not a positive number; ${usage}`);
  if (pid === undefined || !/^[0-9]+$/.test(pid) || Number(pid) !== process.pid)
    fail(`LISTEN_PID=${pid === undefined ? '(unset)' : JSON.stringify(pid)} does not match ` +
         `my pid ${process.pid}; the sockets are not meant for me; ${usage}`);
  const n = Number(fds);
  return Array.from({ length: n }, (_, i) => LISTEN_FDS_START + i);
}

// Environment for helper processes: the sockets are ours, not theirs.
function childEnv() {
  const env = { ...process.env };
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return env;
}

function notifyReady() {
  if (!process.env.NOTIFY_SOCKET)
    return;
  execFile('systemd-notify', ['--ready'], { env: childEnv(), timeout: 10000 }, (err, stdout, stderr) => {
    if (err) {
      const detail = (stderr || '').trim() || err.message.trim();
      process.stderr.write(`${PROG}: systemd-notify --ready failed: ${detail}\n`);
    }
  });
}

let served = 0;
const drain = new Drain({ graceMs: STOP_IDLE_GRACE_MS });

function send(res, status, body, extraHeaders = {}) {
  if (drain.stopping)
    res.setHeader('Connection', 'close');
  res.writeHead(status, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body); // Node leaves the body out for HEAD on its own
}

// Parse ms= of /slow; -1 if missing or not an integer in 0..MAX_SLOW_MS.
function slowMs(query) {
  for (const param of query.split('&')) {
    if (param.startsWith('ms=')) {
      const v = param.slice(3);
      if (!/^[0-9]{1,6}$/.test(v) || Number(v) > MAX_SLOW_MS)
        return -1;
      return Number(v);
    }
  }
  return -1;
}

function handle(req, res) {
  res.on('finish', () => { served++; });
  drain.busy(req.socket, res);

  // Bodies are not supported; refuse them and close, since the body we did
  // not read would otherwise be taken for the next request.
  const cl = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (cl !== undefined && !/^0+$/.test(cl))) {
    send(res, 400, 'bad request\n', { Connection: 'close' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }

  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  let delay = 0;
  if (path === '/slow') {
    delay = slowMs(q < 0 ? '' : req.url.slice(q + 1));
    if (delay < 0) {
      send(res, 400, 'bad request\n');
      return;
    }
  }

  const answer = () => {
    if (res.destroyed)
      return; // the client went away while we waited
    send(res, 200, `hello from pid ${process.pid} slot ${slot} generation ${generation}\n`);
  };
  if (delay > 0) {
    const timer = setTimeout(answer, delay);
    res.on('close', () => clearTimeout(timer));
  } else {
    answer();
  }
}

const servers = [];
let open = 0;

// Stop accepting and drain (drain.js), then exit once every connection is
// gone. Not server.close(): since Node 19 http.Server's close() also
// destroys every idle keep-alive connection at once (closeIdleConnections()),
// and a client that is sending its next request on one sees the connection
// close without an answer -- the errors a rolling reload under keep-alive
// load would show.
function stop(signal) {
  if (drain.stopping)
    return; // a repeated signal changes nothing
  process.stderr.write(`${PROG}: pid ${process.pid} got ${signal}, finishing requests in flight\n`);
  drain.stop(servers);
}

function main() {
  const fds = listenFds();
  let listening = 0;

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (const fd of fds) {
    const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handle);
    // /slow may hold a response for up to 10 minutes; do not let the
    // request timeout (5 minutes by default) cut it short.
    server.requestTimeout = 0;
    server.on('error', (err) => fail(`fd ${fd}: ${err.message}`));
    server.on('connection', drain.track);
    server.on('close', () => {
      if (--open === 0) {
        process.stderr.write(`${PROG}: pid ${process.pid} slot ${slot} served ${served} requests\n`);
        process.exit(0);
      }
    });
    // Node calls listen() again on the inherited socket, with a backlog of
    // 511 unless told otherwise: that would shrink the queue sockherd (or
    // the socket unit) set up, for every worker. Pass the same backlog as
    // sockherd's --backlog / the socket unit's Backlog= (4096 by default),
    // as the second argument: with { fd }, Node (v20) ignores a `backlog`
    // inside the options object.
    server.listen({ fd }, 4096, () => {
      if (++listening === fds.length) {
        process.stderr.write(`${PROG}: pid ${process.pid} slot ${slot} generation ${generation} ` +
                             `ready on ${fds.length} socket(s)\n`);
        notifyReady();
      }
    });
    servers.push(server);
    open++;
  }

}

main();
