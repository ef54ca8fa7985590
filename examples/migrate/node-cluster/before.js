// BEFORE: a Node.js app that runs its own pool with the `cluster` module
// (what `pm2 start app.js -i 4` does for you too). The primary process
// forks the workers and re-forks the ones that die; every worker calls
// server.listen(8080) and the primary hands out the connections.
//
//     node before.js            # listens on 127.0.0.1:8080 (PORT= to change)
//
// See after.js for the same app as a sockherd worker, and docs/migrating.md.
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');

const PORT = Number(process.env.PORT || 8080);

if (cluster.isPrimary) {
  for (let i = 0; i < os.cpus().length; i++)
    cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} died (${signal || code}), forking another`);
    cluster.fork();
  });
} else {
  const server = http.createServer((req, res) => {
    const answer = () => res.end(`hello from pid ${process.pid}\n`);
    if (req.url === '/slow')
      setTimeout(answer, 1000);
    else
      answer();
  });
  server.listen(PORT, '127.0.0.1');
}
