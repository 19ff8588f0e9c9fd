/**
 * SSH wire-format reading (RFC 4251 §5): uint32, uint64, string, mpint, name-lists. Every read is
 * bounds-checked and throws WireError past the end, so a parser built on it can be handed hostile
 * bytes (certificates, KRLs) and only ever answers or refuses.
 */
export class WireError extends Error {
  override name = 'WireError';
}

export class WireReader {
  private at = 0;

  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.at;
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.at + n > this.buf.length) throw new WireError(`truncated ${what} at byte ${this.at}`);
  }

  byte(): number {
    this.need(1, 'byte');
    return this.buf[this.at++]!;
  }
  u32(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u64(): bigint {
    this.need(8, 'uint64');
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    return v;
  }
  bytes(what = 'string'): Buffer {
    const n = this.u32();
    this.need(n, what);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  /** A string that must be UTF-8 text. */
  text(what = 'string'): string {
    const b = this.bytes(what);
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) throw new WireError(`${what} is not UTF-8`);
    return s;
  }
  /** An mpint as its unsigned magnitude, without the sign byte (negative numbers are refused). */
  mpint(what = 'mpint'): Buffer {
    const b = this.bytes(what);
    if (b.length && b[0]! & 0x80) throw new WireError(`negative ${what}`);
    return b[0] === 0 ? b.subarray(1) : b;
  }
  /** The bytes from `from` to the current position. */
  since(from: number): Buffer {
    return this.buf.subarray(from, this.at);
  }
  end(what: string): void {
    if (!this.done) throw new WireError(`${this.buf.length - this.at} bytes after the end of ${what}`);
  }
}

/** Writes SSH strings, for rebuilding a plain public key blob. */
export function sshString(...parts: (Buffer | string)[]): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      const b = typeof p === 'string' ? Buffer.from(p) : p;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return Buffer.concat([len, b]);
    }),
  );
}

/** An unsigned magnitude as an mpint (a 0 byte in front when the top bit is set). */
export function sshMpint(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length && m[0] === 0) m = m.subarray(1);
  return sshString(m.length && m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}
