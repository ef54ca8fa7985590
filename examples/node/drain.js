// drain.js: stopping an HTTP server without racing its keep-alive clients.
// Used by examples/node/server.js and by bench/app.js (so every benchmark
// contender drains the same way).
//
// Every connection is tracked, with the number of requests it has in flight
// (kept lean: this runs for every connection and request). stop() stops
// accepting and, from then on, a connection with nothing in flight is idle:
// it gets graceMs for one more request (which the app answers with
// "Connection: close", after which Node closes the connection), and is
// ended after that only if nothing arrived meanwhile. Closing an idle
// keep-alive connection at once (what http.Server's close() does since Node
// 19, through closeIdleConnections()) races a client that is sending its
// next request on it: the client sees the connection close without an
// answer.
'use strict';

const net = require('node:net');

class Drain {
  constructor({ graceMs = 2000, lingerMs = 2000 } = {}) {
    this.graceMs = graceMs;   // at stop: an idle connection may still send one request
    this.lingerMs = lingerMs; // after our FIN: wait this long for the client's
    this.stopping = false;
    this.conns = new Set();
    this.inFlight = new Map(); // socket -> requests being answered
    this.timers = new Map();   // socket -> grace or linger timer, once stopping
    const drain = this;
    // for server.on('connection', drain.track)
    this.track = (socket) => {
      drain.conns.add(socket);
      socket.on('close', () => drain.untrack(socket));
      if (drain.stopping)
        drain.armIdle(socket);
    };
  }

  untrack(socket) {
    this.conns.delete(socket);
    this.inFlight.delete(socket);
    clearTimeout(this.timers.get(socket));
    this.timers.delete(socket);
  }

  // Call for every request: busy(req.socket, res).
  busy(socket, res) {
    this.inFlight.set(socket, (this.inFlight.get(socket) || 0) + 1);
    res.on('close', () => { // answered, or the client went away
      const n = this.inFlight.get(socket) - 1;
      if (n > 0) {
        this.inFlight.set(socket, n);
        return;
      }
      this.inFlight.delete(socket);
      if (this.stopping)
        this.armIdle(socket);
    });
  }

  armIdle(socket) {
    // Busy, or already closing (a "Connection: close" answer ends the socket).
    if (this.inFlight.has(socket) || socket.destroyed || !socket.writable)
      return;
    clearTimeout(this.timers.get(socket));
    const seen = socket.bytesRead;
    this.timers.set(socket, setTimeout(() => {
      if (this.inFlight.has(socket) || socket.destroyed || !socket.writable)
        return;
      if (socket.bytesRead !== seen) { // part of a request came in: wait for the rest
        this.armIdle(socket);
        return;
      }
      // end(), not destroy(): our FIN goes first and Node keeps reading until
      // the client's, so a request that crosses the FIN is read and dropped
      // rather than answered by a RST. destroy() only if the client never
      // closes its side.
      socket.end();
      this.timers.set(socket, setTimeout(() => socket.destroy(), this.lingerMs));
    }, this.graceMs));
  }

  // Stop accepting on each server ('close' fires on it once its last
  // connection is gone) and start draining. net.Server's close() only stops
  // accepting; http.Server's would also destroy the idle connections.
  stop(servers, onClose) {
    if (this.stopping)
      return false; // a repeated signal changes nothing
    this.stopping = true;
    for (const server of servers)
      net.Server.prototype.close.call(server, onClose);
    for (const socket of this.conns)
      this.armIdle(socket);
    return true;
  }
}

module.exports = { Drain };
