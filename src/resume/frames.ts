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

/**
 * One frame in one buffer: the payload is copied behind its header (one memcpy), so each frame is
 * one write: on holdfast's side one SSH packet, not a 5-byte packet and then the data; on the
 * helper's side one pipe write. (Throughput through holdfast connect did not move with it: 39.3 ->
 * 38.9 MiB/s up, 36.9 -> 36.6 down; the cost is elsewhere: see docs/performance.md.)
 */
export function frame(type: FrameType, payload: Buffer = EMPTY): Buffer[] {
  const f = Buffer.allocUnsafe(HEADER + payload.length);
  f[0] = type;
  f.writeUInt32BE(payload.length, 1);
  payload.copy(f, HEADER);
  return [f];
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
 * Splits a byte stream into frames without copying DATA: `onData(piece)` gets each DATA payload as
 * the views of the chunks it arrives in (a frame that spans two reads is two pieces), `onFrame(type,
 * payload)` every other frame whole (control frames are small: those few bytes are gathered). Throws
 * FrameError on an unknown type or a frame over MAX_FRAME (the stream is then not ours: close it).
 */
export class FrameReader {
  private header = Buffer.alloc(HEADER);
  private headerHave = 0;
  /** Of the frame being read: its type and how many payload bytes are still to come. */
  private type: FrameType | 0 = 0;
  private left = 0;
  private control: Buffer[] = [];

  constructor(
    private readonly onFrame: (type: FrameType, payload: Buffer) => void,
    private readonly onData: (piece: Buffer) => void = (piece) => onFrame(FRAME.DATA, piece),
  ) {}

  push(chunk: Buffer): void {
    let p = 0;
    for (let guard = 0; guard < 1_000_000 && p < chunk.length; guard++) {
      if (this.type === 0) {
        const n = Math.min(HEADER - this.headerHave, chunk.length - p);
        chunk.copy(this.header, this.headerHave, p, p + n);
        this.headerHave += n;
        p += n;
        if (this.headerHave < HEADER) return;
        this.headerHave = 0;
        const type = this.header[0]!;
        const len = this.header.readUInt32BE(1);
        if (type < FRAME.HELLO || type > FRAME.PONG) throw new FrameError(`unknown frame type ${type}`);
        if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes (at most ${MAX_FRAME})`);
        this.type = type as FrameType;
        this.left = len;
        if (len === 0) this.end();
        continue;
      }
      const n = Math.min(this.left, chunk.length - p);
      const piece = chunk.subarray(p, p + n);
      p += n;
      this.left -= n;
      if (this.type === FRAME.DATA) this.onData(piece);
      else this.control.push(piece);
      if (this.left === 0) this.end();
    }
  }

  private end(): void {
    const type = this.type as FrameType;
    this.type = 0;
    if (type === FRAME.DATA) return;
    const payload = this.control.length === 1 ? this.control[0]! : Buffer.concat(this.control);
    this.control = [];
    this.onFrame(type, payload);
  }
}

/** Cuts `data` into DATA frames of at most MAX_FRAME (views, not copies). */
export function dataFrames(data: Buffer): Buffer[] {
  if (data.length <= MAX_FRAME) return frame(FRAME.DATA, data);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += MAX_FRAME) out.push(...frame(FRAME.DATA, data.subarray(i, i + MAX_FRAME)));
  return out;
}
