/**
 * A child process holding N idle `-J` sessions (ssh2 clients, each with one direct-tcpip channel, as
 * `ssh -J` opens): `node idle-sessions.js PORT SINK_PORT N KEY_FILE`. Prints one JSON line with what
 * it got, then holds everything until it is killed (a test SIGKILLs it: every client gone at once).
 */
import fs from 'node:fs';
import ssh2 from 'ssh2';

const [port, sink, n] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const key = fs.readFileSync(process.argv[5]!);
const counts = { open: 0, refused: 0, channelFailed: 0 };
const clients: ssh2.Client[] = [];

function one(): Promise<void> {
  return new Promise((resolve) => {
    const c = new ssh2.Client();
    let settled = false;
    const done = (what: keyof typeof counts) => {
      if (settled) return;
      settled = true;
      counts[what]++;
      resolve();
    };
    c.on('error', () => done('refused'));
    c.on('close', () => done('refused'));
    c.on('ready', () => c.forwardOut('127.0.0.1', 1, '127.0.0.1', sink, (err, ch) => {
      if (err) return done('channelFailed');
      ch.on('error', () => {});
      done('open');
    }));
    c.connect({ host: '127.0.0.1', port, username: 'alice', privateKey: key, readyTimeout: 30_000 });
    clients.push(c);
  });
}

for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, one));
console.log(JSON.stringify(counts));
setInterval(() => {}, 60_000);
