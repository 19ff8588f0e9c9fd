/**
 * An ssh2 client that can also send what no well-behaved client sends: any SSH message payload after
 * login (for the channel-abuse and fuzz tests). Uses ssh2's own packet writer, so the bytes are
 * encrypted and framed like any other packet; only the payload is ours.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import ssh2 from 'ssh2';

const require = createRequire(import.meta.url);
const { sendPacket } = require('ssh2/lib/protocol/utils.js') as { sendPacket(proto: unknown, packet: Buffer): void };

export type Client = InstanceType<typeof ssh2.Client>;

interface PacketWriter {
  allocStart: number;
  alloc(len: number): Buffer;
  finalize(packet: Buffer): Buffer;
}

export function login(port: number, username: string, keyFile: string, timeoutMs = 10_000): Promise<Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      client.end();
      reject(new Error('login timed out'));
    }, timeoutMs);
    client.once('ready', () => {
      clearTimeout(t);
      resolve(client);
    });
    client.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    client.connect({ host: '127.0.0.1', port, username, privateKey: fs.readFileSync(keyFile), readyTimeout: timeoutMs });
  });
}

/** Sends one SSH message whose payload (message number first) is `payload`. */
export function sendRaw(client: Client, payload: Buffer): void {
  const proto = (client as unknown as { _protocol: { _packetRW: { write: PacketWriter } } })._protocol;
  const w = proto._packetRW.write;
  const p = w.allocStart;
  const packet = w.alloc(payload.length);
  payload.copy(packet, p);
  sendPacket(proto, w.finalize(packet));
}

export const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const byte = (n: number): Buffer => Buffer.from([n & 255]);

/**
 * Opens a channel with the window and maximum packet size of our choosing; resolves 'open' (and the
 * channel) or 'refused' with the failure's description.
 */
export function openRaw(
  client: Client,
  type: 'session' | 'direct-tcpip',
  window: number,
  packetSize: number,
  dst: { host: string; port: number } = { host: '127.0.0.1', port: 22 },
): Promise<{ result: 'open' | 'refused'; description?: string; channel?: ssh2.ClientChannel }> {
  const c = client as unknown as {
    _chanMgr: { add(cb: (err: (Error & { reason?: number }) | undefined, ch?: ssh2.ClientChannel) => void): number };
    _protocol: { session(id: number, w: number, p: number): void; directTcpip(id: number, w: number, p: number, cfg: object): void };
  };
  return new Promise((resolve) => {
    const id = c._chanMgr.add((err, ch) => resolve(err ? { result: 'refused', description: err.message } : { result: 'open', channel: ch! }));
    if (type === 'session') c._protocol.session(id, window, packetSize);
    else c._protocol.directTcpip(id, window, packetSize, { srcIP: '127.0.0.1', srcPort: 5555, dstIP: dst.host, dstPort: dst.port });
  });
}

/** Small seeded PRNG (mulberry32): a fuzz run is repeatable from its printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Resolves once none of `chans`' send windows (what the peer still lets us send) has changed for
 * `quietMs`: the flow has settled (memory climbs after the first zero window, so measure after this).
 */
export async function windowsSettled(chans: readonly ssh2.ClientChannel[], quietMs = 10_000, timeoutMs = 90_000): Promise<void> {
  const windows = () => chans.map((ch) => (ch as unknown as { outgoing: { window: number } }).outgoing.window).join(',');
  let last = '';
  let changedAt = Date.now();
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    const now = windows();
    if (now !== last) changedAt = Date.now();
    last = now;
    if (Date.now() - changedAt >= quietMs) return;
    if (Date.now() > deadline) throw new Error(`windows still changing after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
