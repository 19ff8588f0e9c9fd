/**
 * One direction's replay buffer: the stream bytes sent but not yet acknowledged, as the chunks they
 * came in (no copy). `sent` and `acked` are byte offsets from the start of the stream. `full` is
 * back-pressure: the owner stops reading its source until an ACK frees room (never a reason to drop
 * anything or to call the peer dead).
 */
export class ReplayBuffer {
  private chunks: Buffer[] = [];
  /** Offset of the first byte of chunks[0]. */
  private base = 0;
  private bytes = 0;
  sent = 0;

  constructor(readonly limit: number) {}

  get acked(): number {
    return this.base;
  }

  get held(): number {
    return this.bytes;
  }

  get full(): boolean {
    return this.bytes >= this.limit;
  }

  /** Records bytes sent (or to be sent on the next attach). */
  push(chunk: Buffer): void {
    if (!chunk.length) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.sent += chunk.length;
  }

  /** The peer has everything before `offset`: drops it. Returns false for an offset out of range. */
  ack(offset: number): boolean {
    if (!Number.isSafeInteger(offset) || offset < this.base || offset > this.sent) return false;
    let drop = offset - this.base;
    while (drop > 0 && this.chunks.length) {
      const c = this.chunks[0]!;
      if (c.length <= drop) {
        this.chunks.shift();
        drop -= c.length;
        this.bytes -= c.length;
        this.base += c.length;
      } else {
        this.chunks[0] = c.subarray(drop);
        this.bytes -= drop;
        this.base += drop;
        drop = 0;
      }
    }
    return true;
  }

  /** What to send again to a peer that has received `offset` bytes (after ack(offset)). */
  from(offset: number): Buffer[] | undefined {
    if (!this.ack(offset)) return undefined;
    return [...this.chunks];
  }
}
