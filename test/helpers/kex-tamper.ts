/**
 * A TCP relay that changes one byte of the key exchange on its way: the client's
 * SSH_MSG_KEX_ECDH_INIT (30) or the server's SSH_MSG_KEX_ECDH_REPLY (31). It reads the plaintext
 * packet framing (identification line, then uint32 length, padding length, payload, padding, no MAC
 * before NEWKEYS) and passes everything else through untouched. `at` is an offset into the key
 * share (Q_C or Q_S: for mlkem768x25519-sha256, ML-KEM first, X25519 in the last 32 bytes).
 */
import net from 'node:net';

export interface Tamper {
  /** Which message: the client's share (30) or the server's reply (31). */
  readonly msg: 30 | 31;
  /** Offset into the share; negative counts from its end. */
  readonly at: number;
  /** What to do to that byte (default: flip its lowest bit). */
  readonly change?: (b: number) => number;
}

export interface TamperRelay {
  readonly port: number;
  /** How many shares were changed so far. */
  readonly tampered: () => number;
  close(): void;
}

/** The offset of Q (the share) in a payload of message `msg`. */
function shareOffset(payload: Buffer, msg: number): number {
  if (msg === 30) return 1 + 4;
  const hostKeyLen = payload.readUInt32BE(1);
  return 1 + 4 + hostKeyLen + 4;
}

/** Calls `onPacket(payload)` for each plaintext packet until NEWKEYS; returns a transform for chunks. */
function framer(t: Tamper, direction: 30 | 31, onTampered: () => void): (chunk: Buffer) => Buffer {
  let buf = Buffer.alloc(0);
  let identDone = false;
  let passthrough = false;
  return (chunk) => {
    if (passthrough) return chunk;
    buf = Buffer.concat([buf, chunk]);
    let out = Buffer.alloc(0);
    for (let guard = 0; guard < 1000; guard++) {
      if (!identDone) {
        const nl = buf.indexOf(10);
        if (nl < 0) break;
        const line = buf.subarray(0, nl + 1);
        if (line.subarray(0, 4).toString() === 'SSH-') identDone = true;
        out = Buffer.concat([out, line]);
        buf = buf.subarray(nl + 1);
        continue;
      }
      if (buf.length < 5) break;
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      const packet = Buffer.from(buf.subarray(0, 4 + len));
      buf = buf.subarray(4 + len);
      const payload = packet.subarray(5, 4 + len - packet[4]!);
      if (payload[0] === t.msg && t.msg === direction) {
        const q = shareOffset(payload, t.msg);
        const qLen = payload.readUInt32BE(q - 4);
        const i = q + (t.at < 0 ? qLen + t.at : t.at);
        payload[i] = (t.change ?? ((b) => b ^ 1))(payload[i]!);
        onTampered();
      }
      out = Buffer.concat([out, packet]);
      if (payload[0] === 21) {
        // NEWKEYS: encrypted from here on.
        passthrough = true;
        out = Buffer.concat([out, buf]);
        buf = Buffer.alloc(0);
        break;
      }
    }
    return out;
  };
}

export async function kexTamperRelay(targetPort: number, t: Tamper): Promise<TamperRelay> {
  let tampered = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    const s = net.connect(targetPort, '127.0.0.1');
    for (const x of [c, s]) {
      socks.add(x);
      x.on('error', () => {});
      x.once('close', () => {
        socks.delete(x);
        c.destroy();
        s.destroy();
      });
    }
    const up = framer(t, 30, () => tampered++);
    const down = framer(t, 31, () => tampered++);
    c.on('data', (d) => s.write(up(d)));
    s.on('data', (d) => c.write(down(d)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    tampered: () => tampered,
    close: () => {
      for (const x of socks) x.destroy();
      srv.close();
    },
  };
}
