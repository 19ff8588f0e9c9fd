/**
 * `holdfast connect`'s side of a resumable session: the user's SSH stream between its stdin/stdout
 * (the user's ssh, through ProxyCommand) and a transport to holdfast that it re-establishes when it
 * breaks. The transport is the user's own `ssh ... -s jump holdfast-resume` (src/cli/connect.ts
 * builds the command): every reconnect is a full login with the user's keys and config.
 *
 * Counts stream bytes each way from the start; keeps what it sent until holdfast acknowledges it
 * (ReplayBuffer: when full, it stops reading stdin); on a resume it kills the old transport first
 * (nothing more is read from it), tells holdfast how much it received, and sends again what
 * holdfast did not receive. A transport that answers no heartbeat for `deadMs` is dead. Reconnects
 * back off exponentially with jitter; gives up `detachTimeout` (holdfast says how long) after the
 * transport was lost, with one line on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dataFrames, frame, FRAME, FrameError, FrameReader, jsonFrame, offsetFrame, readOffset, type FrameType } from './frames.js';
import { ReplayBuffer } from './replay.js';

export interface ClientOptions {
  /** The transport command: argv of `ssh ... -s user@jump holdfast-resume`. */
  readonly transport: readonly string[];
  readonly dst: { readonly host: string; readonly port: number };
  readonly bufferBytes: number;
  readonly heartbeatMs: number;
  readonly quiet: boolean;
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  readonly log: (line: string) => void;
}

const ACK_EVERY = 64 * 1024;
/** After the user's ssh closed the helper's stdin: how long holdfast gets to take the EOF. */
const INPUT_END_GRACE_MS = 2000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 15_000;

export class ResumeClient {
  private readonly up: ReplayBuffer;
  private received = 0;
  private ackedToPeer = 0;
  private token: string | undefined;
  private detachTimeoutMs = 10 * 60_000;
  private child: ChildProcess | undefined;
  private attached = false;
  private inputEnded = false;
  private downEofAt: number | undefined;
  private outputEnded = false;
  private lostAt: number | undefined;
  private attempt = 0;
  private lastHeard = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Armed when the transport is lost: detachTimeout later holdfast has closed the session. */
  private giveUp: NodeJS.Timeout | undefined;
  private finished = false;
  private endTimer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private resolveExit!: (code: number) => void;
  readonly exit = new Promise<number>((r) => (this.resolveExit = r));

  constructor(private readonly o: ClientOptions) {
    this.up = new ReplayBuffer(o.bufferBytes);
    o.input.on('data', (d: Buffer) => {
      this.up.push(d);
      if (this.attached) this.send(dataFrames(d));
      if (this.up.full) o.input.pause();
    });
    o.input.once('end', () => {
      this.inputEnded = true;
      if (this.attached) this.send(offsetFrame(FRAME.EOF, this.up.sent));
      // The user's ssh has closed its end: nobody is left to resume for. Once the target's end is
      // through (or after a moment for holdfast to take the EOF), go.
      this.endTimer = setTimeout(() => this.finish(0), INPUT_END_GRACE_MS);
    });
    o.input.on('error', () => {});
    o.output.on('error', () => this.finish(0));
  }

  start(): void {
    this.connect();
  }

  /** SIGHUP/SIGTERM (the user's ssh ends its ProxyCommand this way): tell holdfast the input ended, then go. */
  stop(): void {
    if (this.finished) return;
    if (this.attached) {
      if (!this.inputEnded) this.send(offsetFrame(FRAME.EOF, this.up.sent));
      this.ack();
    }
    this.inputEnded = true;
    const c = this.child;
    this.finished = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    clearTimeout(this.giveUp);
    if (!c || c.exitCode !== null) return this.resolveExit(0);
    c.stdin?.end();
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    c.once('exit', () => {
      clearTimeout(t);
      this.resolveExit(0);
    });
  }

  private connect(): void {
    const [cmd, ...args] = this.o.transport;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.attached = false;
    child.stdin!.on('error', () => {});
    const reader = new FrameReader((type, payload) => this.onFrame(child, type, payload));
    child.stdout!.on('data', (d: Buffer) => {
      if (this.child !== child) return;
      this.lastHeard = performance.now();
      try {
        reader.push(d);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.say(`holdfast connect: the transport sent something that is not holdfast's (${err.message}); is ${this.o.transport.at(-2)} a holdfast?`);
        this.finish(255);
        return;
      }
      this.ack();
    });
    child.once('error', (err) => this.lost(child, `cannot run ${cmd}: ${err.message}`));
    child.once('exit', () => this.lost(child, 'the transport ended'));
    const hello = this.token === undefined ? { v: 1, dst: this.o.dst } : { v: 1, resume: this.token, received: this.received, sent: this.up.sent };
    for (const f of jsonFrame(FRAME.HELLO, hello)) child.stdin!.write(f);
    this.lastHeard = performance.now();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.beat(child), this.o.heartbeatMs);
  }

  private beat(child: ChildProcess): void {
    if (this.child !== child) return;
    if (performance.now() - this.lastHeard > 3 * this.o.heartbeatMs) {
      child.kill('SIGKILL');
      return this.lost(child, `no answer from holdfast for ${Math.round((3 * this.o.heartbeatMs) / 1000)} s`);
    }
    const n = Buffer.allocUnsafe(4);
    n.writeUInt32BE((Math.random() * 0xffffffff) >>> 0);
    this.send(frame(FRAME.PING, n));
  }

  private onFrame(child: ChildProcess, type: FrameType, payload: Buffer): void {
    if (this.child !== child) return;
    switch (type) {
      case FRAME.WELCOME: {
        const w = JSON.parse(payload.toString('utf8')) as { token?: string; received: number; detachTimeoutMs?: number };
        if (w.token) this.token = w.token;
        if (w.detachTimeoutMs) this.detachTimeoutMs = w.detachTimeoutMs;
        const replay = this.up.from(w.received);
        if (!replay) {
          this.say(`holdfast connect: holdfast says it received ${w.received} bytes, more than were sent (${this.up.sent}): giving up`);
          return this.finish(255);
        }
        if (this.lostAt !== undefined && !this.o.quiet) this.say(`holdfast connect: resumed after ${((performance.now() - this.lostAt) / 1000).toFixed(2)} s`);
        this.attached = true;
        this.lostAt = undefined;
        clearTimeout(this.giveUp);
        this.giveUp = undefined;
        this.attempt = 0;
        for (const c of replay) this.send(dataFrames(c));
        if (this.inputEnded) this.send(offsetFrame(FRAME.EOF, this.up.sent));
        if (!this.up.full) this.o.input.resume();
        return;
      }
      case FRAME.REFUSED: {
        const r = JSON.parse(payload.toString('utf8')) as { code: string; message: string };
        this.say(r.message);
        return this.finish(255);
      }
      case FRAME.DATA: {
        this.received += payload.length;
        if (!this.o.output.write(payload) && !this.waitingDrain) {
          this.waitingDrain = true;
          child.stdout!.pause();
          this.o.output.once('drain', () => {
            this.waitingDrain = false;
            this.child?.stdout?.resume();
          });
        }
        if (this.received - this.ackedToPeer >= ACK_EVERY) this.ack();
        return this.maybeEndOutput();
      }
      case FRAME.ACK:
        if (!this.up.ack(readOffset(payload))) {
          this.say('holdfast connect: holdfast acknowledged bytes never sent: giving up');
          return this.finish(255);
        }
        if (!this.up.full) this.o.input.resume();
        return this.maybeDone();
      case FRAME.EOF:
        this.downEofAt = readOffset(payload);
        return this.maybeEndOutput();
      case FRAME.PONG:
        return;
      default:
        return;
    }
  }

  private ack(): void {
    if (!this.attached || this.received === this.ackedToPeer) return;
    this.ackedToPeer = this.received;
    this.send(offsetFrame(FRAME.ACK, this.received));
  }

  private maybeEndOutput(): void {
    if (this.downEofAt === undefined || this.received < this.downEofAt || this.outputEnded) return;
    this.outputEnded = true;
    this.ack();
    this.o.output.end();
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.outputEnded && this.inputEnded && this.up.acked === this.up.sent) this.finish(0);
  }

  private send(frames: Buffer[]): void {
    const w = this.child?.stdin;
    if (!w || w.destroyed) return;
    for (const f of frames) w.write(f);
  }

  private lost(child: ChildProcess, why: string): void {
    if (this.child !== child || this.finished) return;
    this.child = undefined;
    this.attached = false;
    clearInterval(this.heartbeat);
    child.stdout?.removeAllListeners('data');
    if (child.exitCode === null) child.kill('SIGKILL');
    if (this.token === undefined) {
      // Never attached: the login or the open failed, and ssh said why on stderr (or REFUSED did).
      return this.finish(255);
    }
    const now = performance.now();
    if (this.lostAt === undefined) {
      this.lostAt = now;
      // However long each attempt takes (an ssh that waits for a banner), give up on time.
      this.giveUp = setTimeout(() => this.gaveUp(), this.detachTimeoutMs);
    }
    if (now - this.lostAt >= this.detachTimeoutMs) return this.gaveUp();
    if (this.attempt === 0 && !this.o.quiet) this.say(`holdfast connect: ${why}; reconnecting`);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * (base / 2);
    this.retry = setTimeout(() => this.connect(), Math.min(delay, Math.max(0, this.detachTimeoutMs - (now - this.lostAt))));
  }

  private gaveUp(): void {
    this.say(`holdfast connect: gave up: holdfast could not be reached again within ${Math.round(this.detachTimeoutMs / 1000)} s (its resume.detachTimeout); the session is gone`);
    this.finish(255);
  }

  private say(line: string): void {
    this.o.log(line);
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    clearTimeout(this.giveUp);
    clearTimeout(this.endTimer);
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return this.resolveExit(code);
    // Never leave the transport ssh behind (it would hold the user's terminal's stderr open): it gets
    // its EOF and a moment to say goodbye, then SIGKILL.
    c.stdin?.end();
    const t = setTimeout(() => c.kill('SIGKILL'), code === 0 ? 1000 : 0);
    c.once('exit', () => {
      clearTimeout(t);
      this.resolveExit(code);
    });
  }
}
