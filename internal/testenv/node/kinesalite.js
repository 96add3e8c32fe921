// Starts kinesalite on 127.0.0.1 and a free port, optionally creates streams, then prints
// {"port":N} on one line. kinesalite's own CLI listens on every interface and treats
// --port 0 as 4567, so tests and the demo start it through this launcher instead.
//
// Environment:
//   KINESALITE_PORT        port to listen on (default 0: a free port)
//   KINESALITE_STREAMS     streams to create before reporting ready, e.g. "demo:1,other:4"
//   KINESALITE_KEEP_STDIN  set to keep running after stdin closes (by default the launcher
//                          exits when stdin closes, so a parent that dies never leaves it behind)
//   KINESALITE_TLS_CERT, KINESALITE_TLS_KEY
//                          PEM files: serve HTTPS with them (the benchmark's loopback TLS); the
//                          certificate kinesalite ships with expired in 2018
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

// kinesalite stores a record's data as it was decoded: a base64 string from JSON, but a Node
// Buffer from CBOR (application/x-amz-cbor-1.1), which its JSON store serialises as
// {"type":"Buffer","data":[...]} and GetRecords then answers as such, which no SDK decodes.
// Kinesis stores bytes whatever the protocol, so the put actions get base64 either way.
for (const action of ['putRecords', 'putRecord']) {
  const path = require.resolve('kinesalite/actions/' + action);
  const put = require(path);
  require.cache[path].exports = function(store, data, cb) {
    for (const r of data.Records || [data]) {
      if (Buffer.isBuffer(r.Data)) r.Data = r.Data.toString('base64');
    }
    return put(store, data, cb);
  };
}
const kinesalite = require('kinesalite');

const tls = process.env.KINESALITE_TLS_CERT ? {
  cert: fs.readFileSync(process.env.KINESALITE_TLS_CERT),
  key: fs.readFileSync(process.env.KINESALITE_TLS_KEY),
} : null;

const port = Number(process.env.KINESALITE_PORT || 0);
const streams = (process.env.KINESALITE_STREAMS || '').split(',').filter(Boolean).map((s) => {
  const [name, shards] = s.split(':');
  return {name, shards: Number(shards || 1)};
});

// kinesalite checks that a request carries SigV4-shaped authentication, not its signature.
function call(target, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = (tls ? https : http).request({
      host: '127.0.0.1', port: server.address().port, method: 'POST', path: '/', ca: tls && tls.cert,
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': 'Kinesis_20131202.' + target,
        'X-Amz-Date': '20260101T000000Z',
        'Authorization': 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0',
        'Content-Length': Buffer.byteLength(data),
      },
    }, (res) => {
      let out = '';
      res.on('data', (c) => { out += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(out) : reject(new Error(target + ': ' + out))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const server = kinesalite(Object.assign({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000},
  tls ? {ssl: true, cert: tls.cert, key: tls.key, ca: tls.cert} : {}));
server.on('error', (err) => {
  process.stderr.write('kinesalite: ' + err.message + '\n');
  process.exit(1);
});
server.listen(port, '127.0.0.1', async () => {
  try {
    for (const s of streams) {
      await call('CreateStream', {StreamName: s.name, ShardCount: s.shards});
    }
  } catch (err) {
    process.stderr.write('kinesalite: ' + err.message + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({port: server.address().port}) + '\n');
});
if (!process.env.KINESALITE_KEEP_STDIN) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
