/**
 * A child process of attackers: `node cr-streams.js PORT N SECONDS`. Each of N connections streams
 * '\r' (bytes before an identification line) and, once it is closed, connects again after 100 ms
 * (so N are streaming whenever holdfast lets them), until SECONDS have passed; then prints one JSON
 * line: how many connections, and the ms each took to be closed. SIGTERM ends it early, with that
 * line (the bench's flood row stops it so).
 */
import net from 'node:net';

const [port, n, seconds] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const CR = Buffer.alloc(64 * 1024, 13);
const end = Date.now() + seconds * 1000;
const closes: number[] = [];

function stream(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('error', () => {});
    s.resume();
    s.once('close', () => {
      clearTimeout(timer);
      closes.push(Date.now() - t0);
      resolve();
    });
    const pump = () => {
      while (!s.destroyed && s.write(CR));
      if (!s.destroyed) s.once('drain', pump);
    };
    s.once('connect', pump);
  });
}

const report = () => {
  const sorted = [...closes].sort((a, b) => a - b);
  console.log(JSON.stringify({ connections: closes.length, maxMs: sorted.length ? sorted[sorted.length - 1] : 0, p50Ms: sorted.length ? sorted[sorted.length >> 1] : 0 }));
};
process.once('SIGTERM', () => {
  report();
  process.exit(0);
});

await Promise.all(
  Array.from({ length: n }, async () => {
    for (let i = 0; i < 100_000 && Date.now() < end; i++) {
      await stream();
      await new Promise((r) => setTimeout(r, 100));
    }
  }),
);
report();
