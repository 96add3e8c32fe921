// Starts kinesalite on 127.0.0.1 and a free port, then prints {"port":N} on one line.
// kinesalite's own CLI listens on every interface and treats --port 0 as 4567, so tests
// and the demo start it through this launcher instead. Exits when stdin closes, so a
// parent that dies never leaves it running.
'use strict';
const kinesalite = require('kinesalite');

const port = Number(process.env.KINESALITE_PORT || 0);
const server = kinesalite({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({port: server.address().port}) + '\n');
});
server.on('error', (err) => {
  process.stderr.write('kinesalite: ' + err.message + '\n');
  process.exit(1);
});
if (!process.env.KINESALITE_KEEP_STDIN) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
