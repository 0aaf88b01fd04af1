// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Benchmark target for `make bench`: a plain Node HTTP hello-world, or with
// argv[3] "fs" one that stats a file in the thread pool for each request
// (the pool bench). Port from argv[2], else $PORT, else 0 (ephemeral). Listens on 127.0.0.1 and
// prints "listening PORT" on stdout once ready, so bench/run.sh knows the
// actual port and that the loop is running.
'use strict';
const fs = require('fs');
const http = require('http');

const port = Number(process.argv[2] || process.env.PORT || 0);
const body = 'hello\n';
const fsWork = process.argv[3] === 'fs';
function reply(res) {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
const server = http.createServer((req, res) => {
  if (fsWork) fs.stat(__filename, () => reply(res));
  else reply(res);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => process.exit(0));
