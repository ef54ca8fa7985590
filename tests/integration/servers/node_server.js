// A plain Node http server on the inherited socket (fd 3), for
// tests/integration/test_real_servers.py. On SIGTERM it calls
// server.close() (stop accepting, let open connections finish) and exits
// when they have: what a Node server usually does, nothing more.
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(`hello from pid ${process.pid}\n`);
});
server.listen({ fd: 3 });
process.on('SIGTERM', () => server.close());
