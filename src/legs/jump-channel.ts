/**
 * One `direct-tcpip` channel (what `ssh -J` / `ssh -W` opens) relayed to its TCP upstream leg.
 *
 * Bytes flow through stream pipes both ways, so backpressure is end to end: a slow target stops
 * ssh2 from granting the client more window, a slow client stops reads from the target. No per-byte
 * work in JavaScript; byte counts come from the socket's own counters.
 *
 * Half-close: the client's EOF ends our write side to the target (FIN). The target's FIN becomes a
 * channel EOF once everything before it has been written, and the channel is closed when the TCP
 * connection is fully closed. (ssh2's channel.end() sends EOF and CLOSE together, which would cut the
 * client's remaining upload, so it is only used once both directions are done.)
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ServerChannel } from '../ssh/ssh2.js';
import { growingWindow, MAX_WINDOW, type WindowBudget } from '../ssh/channel-window.js';
import type { ChannelCloseReason } from '../close-reasons.js';

export interface JumpChannelInfo {
  readonly id: number;
  readonly dst: string;
  readonly addr: string;
  /** TCP keepalive is on for the upstream socket: a kernel ETIMEDOUT then means the leg died (a reload may change it). */
  upstreamKeepalive: boolean;
}

const EMPTY = Buffer.alloc(0);
/** After the client's CLOSE, how long bytes still queued for a target that does not read may wait. */
const PEER_CLOSE_DRAIN_MS = 2000;

export class JumpChannel {
  private closed = false;
  readonly openedAt = Date.now();
  /** performance.now() of the last chunk from the target (for the idle time in close logs). */
  lastUpstreamRx = performance.now();
  /** Byte counts for upstreams that are not sockets (an SSH channel through a bastion). */
  private up = 0;
  private down = 0;
  private readonly socket: net.Socket | null;
  private readonly window: ReturnType<typeof growingWindow> | undefined;
  private peerCloseDrain: NodeJS.Timeout | undefined;

  constructor(
    readonly info: JumpChannelInfo,
    private readonly channel: ServerChannel,
    private readonly upstream: Duplex,
    private readonly onClosed: (reason: ChannelCloseReason, error?: string) => void,
    /** Lets the client's upload window grow past ssh2's 2 MiB on long fat links (process, user, connection). */
    windowBudget?: readonly WindowBudget[],
  ) {
    let upstreamError: string | undefined;
    this.socket = upstream instanceof net.Socket ? upstream : null;
    if (!this.socket) channel.on('data', (d: Buffer) => (this.up += d.length));
    channel.pipe(upstream);
    upstream.pipe(channel, { end: false });
    // Grows only on bytes that left holdfast for the target (written out, not queued here).
    this.window = windowBudget ? growingWindow(channel, MAX_WINDOW, windowBudget, () => this.bytesUp - upstream.writableLength, () => upstream.writableLength) : undefined;
    upstream.once('end', () => {
      // Flush what is queued on the channel, then send EOF (an empty write's callback runs in order).
      if (!channel.writable) return;
      channel.write(EMPTY, () => (channel as unknown as { eof(): void }).eof());
    });
    upstream.on('data', (d: Buffer) => {
      this.lastUpstreamRx = performance.now();
      if (!this.socket) this.down += d.length;
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      upstreamError = err.code ?? err.message;
    });
    upstream.once('close', () => {
      // With keepalive on, the kernel reports a dead peer as ETIMEDOUT (keepalive probes unanswered,
      // or TCP_USER_TIMEOUT with data unacknowledged).
      if (upstreamError === 'ETIMEDOUT' && this.info.upstreamKeepalive) this.close('upstream-keepalive-timeout', upstreamError);
      else this.close(upstreamError ? 'upstream-error' : 'upstream-closed', upstreamError);
    });
    channel.on('error', () => {
      /* the session's connection reports; the close below tidies up */
    });
    channel.once('close', () => this.close('peer-closed'));
    // ssh2 emits 'close' for a channel the client closed only once its readable side has ended, i.e.
    // once the target has taken every byte queued for it. A target that stopped reading would keep
    // the channel, its socket and its buffers for the life of the connection. ssh2 ends our writable
    // side when the client's CLOSE arrives: from then on the queued bytes get a bounded moment.
    channel.once('finish', () => {
      if ((channel as unknown as { incoming?: { state?: string } }).incoming?.state !== 'closed' || this.closed) return;
      this.peerCloseDrain = setTimeout(() => this.close('peer-closed'), PEER_CLOSE_DRAIN_MS);
    });
  }

  get queuedBytes(): number {
    return this.channel.readableLength + this.upstream.writableLength;
  }

  get bytesUp(): number {
    return this.socket ? this.socket.bytesWritten : this.up;
  }

  get bytesDown(): number {
    return this.socket ? this.socket.bytesRead : this.down;
  }

  /** Idempotent; the first reason wins. Releases the upstream socket, then the channel. */
  close(reason: ChannelCloseReason, error?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.peerCloseDrain);
    this.peerCloseDrain = undefined;
    this.window?.release();
    if (reason === 'upstream-closed') {
      // Orderly: let queued bytes reach the client, then EOF+CLOSE.
      if (this.channel.writable) this.channel.end();
      else closeChannel(this.channel);
    } else {
      this.upstream.destroy();
      // An ssh2 channel's destroy() only sends EOF+CLOSE; drain it so it can end and emit 'close'.
      if (!this.socket) this.upstream.resume();
      closeChannel(this.channel);
    }
    this.onClosed(reason, error);
  }

  /** The largest receive window the client was granted (bytes). */
  get maxWindow(): number {
    return this.window?.stats().maxTarget ?? 0;
  }
}

function closeChannel(ch: ServerChannel): void {
  try {
    (ch as unknown as { close(): void }).close();
  } catch {
    // Connection already gone.
  }
}
