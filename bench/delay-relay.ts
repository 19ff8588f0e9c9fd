/**
 * A relay that adds a fixed one-way delay to every byte in both directions (so 2 × delay of
 * round-trip time): a long fat link on loopback, in userspace, without root or tc/netem.
 * Order is kept (one FIFO per direction, one timer); memory is bounded by pausing the sender when
 * more than `maxQueued` bytes wait in one direction.
 */
import net from 'node:net';

export interface DelayRelay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startDelayRelay(targetPort: number, oneWayDelayMs: number, maxQueued = 256 * 1024 * 1024): Promise<DelayRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(s);
      });
    }
    delayed(client, upstream, oneWayDelayMs, maxQueued);
    delayed(upstream, client, oneWayDelayMs, maxQueued);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function delayed(from: net.Socket, to: net.Socket, delayMs: number, maxQueued: number): void {
  const queue: Array<{ due: number; chunk: Buffer | null }> = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        continue;
      }
      queued -= chunk.length;
      to.write(chunk);
    }
    if (queued < maxQueued / 2 && from.isPaused()) from.resume();
    if (queue.length) timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
  };
  const enqueue = (chunk: Buffer | null) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    if (chunk) queued += chunk.length;
    if (queued > maxQueued) from.pause();
    timer ??= setTimeout(flush, delayMs);
  };
  from.on('data', (d: Buffer) => enqueue(d));
  from.on('end', () => enqueue(null));
  from.on('close', () => clearTimeout(timer));
}
