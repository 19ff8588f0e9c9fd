/**
 * A userspace middlebox that forgets idle flows: it relays TCP between a client and a target and,
 * once a flow has seen no byte in either direction for `idleMs`, silently stops forwarding it (no
 * FIN, no RST: later bytes are swallowed), as a NAT or firewall with a short idle timeout does.
 */
import net from 'node:net';

export interface IdleRelay {
  readonly port: number;
  /** Flows forgotten so far. */
  readonly forgotten: () => number;
  /** From now on every flow, open or new, is swallowed both ways: a black hole. */
  blackhole(): void;
  close(): Promise<void>;
}

export async function startIdleRelay(targetPort: number, idleMs: number, targetHost = '127.0.0.1'): Promise<IdleRelay> {
  const sockets = new Set<net.Socket>();
  let forgotten = 0;
  let blackholed = false;
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    let last = Date.now();
    let dead = false;
    // idleMs 0: never forgets by itself (a relay that only black-holes on demand).
    const check = setInterval(() => {
      if (idleMs <= 0) return;
      if (!dead && Date.now() - last >= idleMs) {
        dead = true;
        forgotten++;
        clearInterval(check);
        timers.delete(check);
      }
    }, idleMs > 0 ? Math.max(10, Math.floor(idleMs / 20)) : 1000);
    timers.add(check);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (d) => {
        if (dead || blackholed) return; // swallowed: the middlebox has forgotten this flow
        last = Date.now();
        to.write(d);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      clearInterval(check);
      timers.delete(check);
      if (!dead) {
        client.destroy();
        upstream.destroy();
      }
    };
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    forgotten: () => forgotten,
    blackhole: () => {
      blackholed = true;
    },
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
