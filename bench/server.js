// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Benchmark target for `make bench`: a plain Node HTTP hello-world.
// Port from argv[2], else $PORT, else 0 (ephemeral). Listens on 127.0.0.1 and
// prints "listening PORT" on stdout once ready, so bench/run.sh knows the
// actual port and that the loop is running.
'use strict';
const http = require('http');

const port = Number(process.argv[2] || process.env.PORT || 0);
const body = 'hello\n';
const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => process.exit(0));
