#!/usr/bin/env node
// bench/node-rolling.js: the usual Node rolling-restart recipe, as a cluster
// primary running WORKERS copies of bench/app.js on PORT. On SIGHUP it
// replaces the workers one at a time, new before old: fork the new worker,
// wait for its 'listening' event, then send the old one SIGTERM (it stops
// accepting, drains its connections, leaves the cluster and exits; see
// bench/app.js). Not worker.disconnect(): in the worker, cluster's
// disconnect calls http.Server's close(), which destroys idle keep-alive
// connections at once and so bypasses the app's drain. When
// every worker was replaced it prints "rolled generation G" on stdout. A
// SIGHUP during a roll is queued.
// SIGTERM/SIGINT stop everything.
'use strict';

const cluster = require('node:cluster');
const path = require('node:path');

const n = Number(process.env.WORKERS || 2);
let generation = 1;
let stopping = false;
let rolling = false;
let pending = 0;
const slots = new Array(n);

cluster.setupPrimary({ exec: path.join(__dirname, 'app.js') });

function fork(slot) {
  const w = cluster.fork({ SLOT: String(slot), GENERATION: String(generation) });
  w.on('exit', () => {
    // respawn a worker that died on its own, not one we replaced
    if (!stopping && slots[slot] === w)
      slots[slot] = fork(slot);
  });
  return w;
}

function listening(w) {
  return new Promise((resolve) => w.once('listening', resolve));
}

async function roll() {
  rolling = true;
  while (pending > 0) {
    pending--;
    generation++;
    for (let slot = 0; slot < n && !stopping; slot++) {
      const old = slots[slot];
      const next = fork(slot);
      await listening(next);
      slots[slot] = next;
      old.process.kill('SIGTERM');
    }
    process.stdout.write(`rolled generation ${generation}\n`);
  }
  rolling = false;
}

(async () => {
  for (let slot = 0; slot < n; slot++)
    slots[slot] = fork(slot);
  await Promise.all(slots.map(listening));
  process.stdout.write(`node-rolling: ${n} workers listening\n`);
  process.on('SIGHUP', () => {
    pending++;
    if (!rolling)
      roll();
  });
})();

function stop() {
  if (stopping)
    return;
  stopping = true;
  cluster.disconnect(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
