/**
 * The framing of a resumable client leg (`holdfast connect` <-> holdfast's `holdfast-resume`
 * subsystem), both directions: [type: u8][length: u32 BE][payload]. Control frames carry JSON
 * (rare, small); DATA carries the user's SSH stream as is; ACK and EOF carry a 64-bit byte offset
 * (the count of stream bytes received, from the start of the session). No per-byte work: a frame
 * header is read per frame and a DATA payload is a view of the chunk it came in.
 */
/** The subsystem `holdfast connect` asks for (`ssh -s jump holdfast-resume`). */
export const RESUME_SUBSYSTEM = 'holdfast-resume';

export const FRAME = {
  /** helper -> holdfast: {v, dst: {host, port}} to open, or {v, token, received} to resume. */
  HELLO: 1,
  /** holdfast -> helper: {token, received}: the session's secret (new ones only) and what holdfast has received. */
  WELCOME: 2,
  /** holdfast -> helper: {code, message}; the transport closes after it. */
  REFUSED: 3,
  DATA: 4,
  /** u64: stream bytes received so far (the sender may drop what lies before it). */
  ACK: 5,
  /** u64: the sender's stream ends after this many bytes. */
  EOF: 6,
  /** u32 nonce: answered with PONG (the helper's own liveness check of its transport). */
  PING: 7,
  PONG: 8,
} as const;

export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** Largest frame payload accepted: DATA is cut to this, control frames are far smaller. */
export const MAX_FRAME = 256 * 1024;
const HEADER = 5;

export function frame(type: FrameType, payload: Buffer = EMPTY): Buffer[] {
  const h = Buffer.allocUnsafe(HEADER);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return payload.length ? [h, payload] : [h];
}

export const jsonFrame = (type: FrameType, value: unknown): Buffer[] => frame(type, Buffer.from(JSON.stringify(value)));

export function offsetFrame(type: typeof FRAME.ACK | typeof FRAME.EOF, offset: number): Buffer[] {
  const p = Buffer.allocUnsafe(8);
  p.writeBigUInt64BE(BigInt(offset));
  return frame(type, p);
}

export const readOffset = (p: Buffer): number => (p.length === 8 ? Number(p.readBigUInt64BE(0)) : NaN);

const EMPTY = Buffer.alloc(0);

export class FrameError extends Error {}

/**
 * Splits a byte stream into frames. `push(chunk)` calls `onFrame(type, payload)` for each whole
 * frame; a partial one waits for the next chunk. Throws FrameError on an unknown type or a frame
 * over MAX_FRAME (the stream is then not ours: close it).
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onFrame: (type: FrameType, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes) {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let p = 0;
    for (let guard = 0; guard < 1_000_000; guard++) {
      if (buf.length - p < HEADER) break;
      const type = buf[p]!;
      const len = buf.readUInt32BE(p + 1);
      if (type < FRAME.HELLO || type > FRAME.PONG) throw new FrameError(`unknown frame type ${type}`);
      if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes (at most ${MAX_FRAME})`);
      if (buf.length - p - HEADER < len) break;
      this.onFrame(type as FrameType, buf.subarray(p + HEADER, p + HEADER + len));
      p += HEADER + len;
    }
    if (p < buf.length) {
      const rest = buf.subarray(p);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }
}

/** Cuts `data` into DATA frames of at most MAX_FRAME (views, not copies). */
export function dataFrames(data: Buffer): Buffer[] {
  if (data.length <= MAX_FRAME) return frame(FRAME.DATA, data);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += MAX_FRAME) out.push(...frame(FRAME.DATA, data.subarray(i, i + MAX_FRAME)));
  return out;
}
