#!/usr/bin/env node
// bench/app-cluster.js: Node's cluster module running WORKERS copies of
// bench/app.js on PORT. The scheduling policy is Node's own switch:
//     NODE_CLUSTER_SCHED_POLICY=rr    the primary accepts and hands out
//                                     connections round-robin (default)
//     NODE_CLUSTER_SCHED_POLICY=none  the workers accept on the shared
//                                     socket themselves
// A worker that dies is forked again. SIGTERM/SIGINT: disconnect every
// worker (they finish in-flight requests) and exit.
'use strict';

const cluster = require('node:cluster');
const path = require('node:path');

const n = Number(process.env.WORKERS || 2);
let stopping = false;

cluster.setupPrimary({ exec: path.join(__dirname, 'app.js') });

function fork(slot) {
  const w = cluster.fork({ SLOT: String(slot) });
  w.on('exit', () => {
    if (!stopping)
      fork(slot);
  });
}

for (let i = 0; i < n; i++)
  fork(i);

let listening = 0;
cluster.on('listening', () => {
  if (++listening === n)
    process.stdout.write(`app-cluster: ${n} workers listening, policy ` +
                         `${cluster.schedulingPolicy === cluster.SCHED_RR ? 'rr' : 'none'}\n`);
});

function stop() {
  if (stopping)
    return;
  stopping = true;
  cluster.disconnect(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
