/**
 * A resumable client leg on holdfast's side: the target's stream (an UpstreamLeg from dial()) and
 * the transport that carries it to `holdfast connect` (a `holdfast-resume` subsystem channel of one
 * of the user's SSH connections), which may die and be replaced. While no transport is attached the
 * leg is detached: the target socket stays open and is read into the replay buffer until it is full
 * (then it is paused: back-pressure), and `detachTimeout` later the leg closes (`detach-timeout`).
 *
 * Nothing lost, nothing twice: each direction counts stream bytes from the start; holdfast keeps
 * what it sent the helper until the helper acknowledges it, and on a resume the helper says how
 * much it received (holdfast sends the rest again) and holdfast says how much it received (the
 * helper sends the rest). An old transport is cut off (no more of its frames are read) before a new
 * one is told holdfast's count.
 */
import type { Duplex } from 'node:stream';
import { dataFrames, frame, FRAME, FrameError, FrameReader, jsonFrame, offsetFrame, readOffset, type FrameType } from './frames.js';
import { ReplayBuffer } from './replay.js';
import type { ResumableCloseReason } from '../close-reasons.js';

export interface LegSettings {
  readonly detachTimeoutMs: number;
  readonly bufferBytes: number;
}

export interface LegHooks {
  detached(why: string, held: number): void;
  closed(reason: ResumableCloseReason, detail?: string): void;
}

/** At most one ACK per this many bytes received, and one at the end of each read. */
const ACK_EVERY = 64 * 1024;

export class ResumableLeg {
  readonly openedAt = Date.now();
  private transport: Duplex | undefined;
  private cut: (() => void) | undefined;
  private readonly down: ReplayBuffer;
  /** Stream bytes received from the helper (and written to the target). */
  private received = 0;
  private ackedToPeer = 0;
  private upEofAt: number | undefined;
  private targetEnded = false;
  private closed = false;
  private detachTimer: NodeJS.Timeout | undefined;
  detachedAt: number | undefined = performance.now();
  resumes = 0;

  constructor(
    private readonly target: Duplex,
    private readonly settings: LegSettings,
    private readonly hooks: LegHooks,
  ) {
    this.down = new ReplayBuffer(settings.bufferBytes);
    target.on('data', (d: Buffer) => {
      this.down.push(d);
      if (this.transport) this.send(dataFrames(d));
      if (this.down.full) target.pause();
    });
    target.once('end', () => {
      this.targetEnded = true;
      if (this.transport) this.send(offsetFrame(FRAME.EOF, this.down.sent));
      this.maybeDone();
    });
    target.on('error', () => {});
    target.once('close', () => {
      if (!this.targetEnded) this.close('upstream-error', 'the target connection failed');
    });
    this.armDetachTimer();
  }

  get bytesUp(): number {
    return this.received;
  }

  get bytesDown(): number {
    return this.down.sent;
  }

  /** What holdfast holds for the helper (not yet acknowledged) and for the target. */
  get queuedBytes(): number {
    return this.down.held + this.target.writableLength;
  }

  get isAttached(): boolean {
    return this.transport !== undefined;
  }

  /**
   * Attaches a transport whose helper has received `peerReceived` bytes (its HELLO); `welcome` is
   * what else the WELCOME carries. Returns what is sent again, or a reason when the count is
   * impossible (more than was sent, or less than the helper already acknowledged).
   */
  attach(transport: Duplex, peerReceived: number, welcome: Record<string, unknown>): { replayed: number } | { refused: string } {
    if (this.closed) return { refused: 'the session has ended' };
    const replay = this.down.from(peerReceived);
    if (!replay) return { refused: `the helper says it received ${peerReceived} bytes; holdfast sent ${this.down.sent}, ${this.down.acked} of them acknowledged` };
    this.detach('replaced by a newer transport', false);
    clearTimeout(this.detachTimer);
    this.detachTimer = undefined;
    this.detachedAt = undefined;
    this.transport = transport;
    const reader = new FrameReader((type, payload) => this.onFrame(type, payload));
    const onData = (d: Buffer) => {
      try {
        reader.push(d);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.detach(`the helper sent a bad frame: ${err.message}`);
        return;
      }
      this.ack();
    };
    const onGone = () => this.detach('the transport closed');
    transport.on('data', onData);
    transport.once('close', onGone);
    transport.once('end', onGone);
    transport.on('error', () => {});
    this.cut = () => {
      transport.off('data', onData);
      transport.off('close', onGone);
      transport.off('end', onGone);
    };
    this.send(jsonFrame(FRAME.WELCOME, { ...welcome, received: this.received }));
    let replayed = 0;
    for (const c of replay) {
      replayed += c.length;
      this.send(dataFrames(c));
    }
    if (this.targetEnded) this.send(offsetFrame(FRAME.EOF, this.down.sent));
    if (!this.down.full) this.target.resume();
    return { replayed };
  }

  private onFrame(type: FrameType, payload: Buffer): void {
    switch (type) {
      case FRAME.DATA:
        this.received += payload.length;
        if (!this.target.write(payload) && this.transport) {
          const t = this.transport;
          t.pause();
          this.target.once('drain', () => t.resume());
        }
        return this.maybeEndTarget();
      case FRAME.ACK:
        if (!this.down.ack(readOffset(payload))) return this.detach('the helper acknowledged bytes never sent');
        if (!this.down.full) this.target.resume();
        return this.maybeDone();
      case FRAME.EOF:
        this.upEofAt = readOffset(payload);
        return this.maybeEndTarget();
      case FRAME.PING:
        return this.send(frame(FRAME.PONG, Buffer.from(payload)));
      default:
        return this.detach(`the helper sent frame ${type} mid-stream`);
    }
  }

  private ack(): void {
    if (this.received - this.ackedToPeer === 0) return;
    this.ackedToPeer = this.received;
    this.send(offsetFrame(FRAME.ACK, this.received));
  }

  private maybeEndTarget(): void {
    if (this.received - this.ackedToPeer >= ACK_EVERY) this.ack();
    if (this.upEofAt !== undefined && this.received >= this.upEofAt && this.target.writable) this.target.end();
  }

  /** Both directions are over: the target ended and the helper has all of it; the helper's EOF came. */
  private maybeDone(): void {
    if (this.targetEnded && this.down.acked === this.down.sent && this.upEofAt !== undefined && this.received >= this.upEofAt) {
      this.close('done');
    }
  }

  private send(frames: Buffer[]): void {
    const t = this.transport;
    if (!t || t.destroyed || !t.writable) return;
    for (const f of frames) t.write(f);
  }

  /** The transport is gone (or cut off for a newer one): keep the target, wait for a resume. */
  detach(why: string, report = true): void {
    const t = this.transport;
    if (!t) return;
    // The helper's input had ended (the user's ssh closed its end): nobody will resume this.
    if (report && this.upEofAt !== undefined && this.received >= this.upEofAt) return this.close('done');
    this.cut?.();
    this.cut = undefined;
    this.transport = undefined;
    t.destroy();
    if (this.closed) return;
    this.detachedAt = performance.now();
    this.armDetachTimer();
    if (report) this.hooks.detached(why, this.down.held);
  }

  private armDetachTimer(): void {
    clearTimeout(this.detachTimer);
    this.detachTimer = setTimeout(() => this.close('detach-timeout', `nobody resumed within ${Math.round(this.settings.detachTimeoutMs / 1000)} s`), this.settings.detachTimeoutMs);
  }

  close(reason: ResumableCloseReason, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.detachTimer);
    this.detachTimer = undefined;
    // The helper's last bytes are acknowledged before the transport ends (it waits for that ACK).
    if (reason === 'done') this.ack();
    const t = this.transport;
    this.cut?.();
    this.transport = undefined;
    if (t && reason === 'done') t.end();
    else t?.destroy();
    this.target.destroy();
    this.hooks.closed(reason, detail);
  }
}
