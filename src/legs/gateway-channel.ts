/**
 * One session channel in gateway mode: the user's session on holdfast relayed to a session channel
 * holdfast opens on the target (RFC 4254 §6).
 *
 * Requests before the start (env, pty-req, auth-agent-req) are answered at once and replayed on the
 * target's channel when it opens; OpenSSH's client sends them without waiting, and replies must come
 * back in order (§4), so they cannot wait for the target. The start request (shell, exec, subsystem)
 * is accepted synchronously: before accept() ssh2 drops CHANNEL_DATA, and an early EOF would make
 * accept() return nothing (stdin lost). Until the target's channel is open the client's stream is not
 * read, so its window closes and the client waits: nothing is lost. `subsystem` (sftp) is relayed
 * as raw bytes. window-change and signal follow the start. The end mirrors the target's: stdout and
 * stderr drained, then exit-status or exit-signal, then EOF and CLOSE.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel, ServerSession } from '../ssh/ssh2.js';
import type { GatewayUpstream } from './ssh-gateway.js';
import { growingWindow, MAX_WINDOW, type WindowBudget } from '../ssh/channel-window.js';
import type { GatewayChannelCloseReason } from '../close-reasons.js';


export interface GatewayChannelInfo {
  readonly id: number;
  kind: string;
  command?: string;
}

type Accept<T> = (() => T) | undefined;
type Reject = (() => void) | undefined;

const MAX_ENV = 64;

export class GatewayChannel {
  readonly openedAt = Date.now();
  bytesUp = 0;
  bytesDown = 0;
  private readonly env: Record<string, string> = {};
  private pty: PseudoTtyInfo | undefined;
  private agentForward = false;
  private ch: ServerChannel | undefined;
  private up: ClientChannel | undefined;
  private closed = false;
  private window: ReturnType<typeof growingWindow> | undefined;

  /** What holdfast holds for the target: unread from the client, queued on the target's channel. */
  get queuedBytes(): number {
    return (this.ch?.readableLength ?? 0) + (this.up?.writableLength ?? 0);
  }

  constructor(
    readonly info: GatewayChannelInfo,
    session: ServerSession,
    private readonly upstream: GatewayUpstream,
    /** From the user's authorized_keys line: no-pty, no-agent-forwarding, restrict. */
    allow: { readonly pty: boolean; readonly agentForwarding: boolean },
    private readonly windowBudget: readonly WindowBudget[] | undefined,
    private readonly hooks: {
      started: (c: GatewayChannel) => void;
      refused: (c: GatewayChannel, what: string) => void;
      closed: (c: GatewayChannel, reason: GatewayChannelCloseReason, detail?: string) => void;
    },
  ) {
    session.on('env', (accept: Accept<void>, _r: Reject, e: { key: string; val: string }) => {
      if (Object.keys(this.env).length < MAX_ENV) this.env[e.key] = e.val;
      accept?.();
    });
    session.on('pty', (accept: Accept<void>, reject: Reject, p: PseudoTtyInfo) => {
      if (!allow.pty) {
        this.hooks.refused(this, 'pty (key has no-pty/restrict)');
        return reject?.();
      }
      this.pty = p;
      accept?.();
    });
    session.on('window-change', (accept: Accept<void>, _r: Reject, w: { cols: number; rows: number; width: number; height: number }) => {
      if (this.up) this.up.setWindow(w.rows, w.cols, w.height, w.width);
      else if (this.pty) this.pty = { ...this.pty, cols: w.cols, rows: w.rows, width: w.width, height: w.height };
      accept?.();
    });
    session.on('auth-agent', (accept: Accept<void>, reject: Reject) => {
      if (!allow.agentForwarding) {
        this.hooks.refused(this, 'agent forwarding (key has no-agent-forwarding/restrict)');
        return reject?.();
      }
      this.agentForward = true;
      accept?.();
    });
    session.on('signal', (accept: Accept<void>, _r: Reject, s: { name: string }) => {
      try {
        this.up?.signal(s.name);
      } catch {
        /* a signal name ssh2 does not know: dropped, as sshd drops unknown ones */
      }
      accept?.();
    });
    session.on('x11', (_a: Accept<void>, reject: Reject) => {
      this.hooks.refused(this, 'x11 forwarding');
      reject?.();
    });
    session.on('shell', (accept: Accept<ServerChannel | undefined>) => void this.start('shell', '', accept));
    session.on('exec', (accept: Accept<ServerChannel | undefined>, _r: Reject, e: { command: string }) => void this.start('exec', e.command, accept));
    session.on('subsystem', (accept: Accept<ServerChannel | undefined>, _r: Reject, s: { name: string }) => void this.start('subsystem', s.name, accept));
    session.once('close', () => this.close('client-closed'));
  }

  private async start(kind: 'shell' | 'exec' | 'subsystem', arg: string, accept: Accept<ServerChannel | undefined>): Promise<void> {
    const ch = accept?.();
    if (!ch) return;
    this.ch = ch;
    this.info.kind = kind === 'subsystem' ? `subsystem:${arg}` : kind;
    if (kind === 'exec') this.info.command = arg.length > 200 ? `${arg.slice(0, 200)}…` : arg;
    ch.on('error', () => {});
    ch.once('close', () => this.close('client-closed'));
    let up: ClientChannel;
    try {
      up = await this.upstream.openSession(kind, arg, { env: this.env, pty: this.pty, agentForward: this.agentForward });
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.closed) {
      up.close();
      return;
    }
    this.up = up;
    this.hooks.started(this);
    up.on('error', () => {});
    ch.on('data', (d: Buffer) => (this.bytesUp += d.length));
    up.on('data', (d: Buffer) => (this.bytesDown += d.length));
    up.stderr.on('data', (d: Buffer) => (this.bytesDown += d.length));
    // Client EOF -> EOF on the target's channel (ssh2 client channels half-close). The way back is
    // not ended by the pipes: the exit status must go out before EOF and CLOSE.
    ch.pipe(up);
    up.pipe(ch, { end: false });
    // Only now that the client's stream flows into the target: a 'data' listener starts the flow.
    if (this.windowBudget) this.window = growingWindow(ch, MAX_WINDOW, this.windowBudget, () => this.bytesUp - up.writableLength, () => up.writableLength);
    up.stderr.pipe(ch.stderr, { end: false });
    let stderrEnded = false;
    let exit: { code: number | null; signal?: string; dump?: boolean; desc?: string } | undefined;
    const finish = () => {
      if (!exit || !stderrEnded) return;
      this.sendExit(ch, exit);
      ch.end();
      this.close('done');
    };
    up.stderr.once('end', () => {
      stderrEnded = true;
      finish();
    });
    // ssh2 emits 'close' on a client session channel after stdout's 'end', with the exit status or signal.
    up.once('close', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
      exit = { code, signal, dump, desc };
      finish();
    });
  }

  private sendExit(ch: ServerChannel, exit: { code: number | null; signal?: string; dump?: boolean; desc?: string }): void {
    try {
      if (typeof exit.code === 'number') ch.exit(exit.code);
      else if (exit.signal) ch.exit(exit.signal, exit.dump ?? false, exit.desc ?? '');
    } catch {
      // ssh2 knows only the 13 signals of RFC 4254 §6.10; OpenSSH's client exits 255 on a signal anyway.
      ch.exit(255);
    }
  }

  /** The target could not give us the channel: one line on the user's stderr, exit 255 like ssh. */
  private fail(message: string): void {
    const ch = this.ch;
    if (ch && ch.writable) {
      ch.stderr.write(`holdfast: ${message}\r\n`);
      ch.exit(255);
      ch.end();
    }
    this.close('target-refused', message);
  }

  /** One line on the user's stderr (a limit is near); not channel data from the target, so not activity. */
  notice(line: string): void {
    const ch = this.ch;
    if (!this.closed && ch && ch.writable) ch.stderr.write(`\r\nholdfast: ${line}\r\n`);
  }

  /**
   * The channel ends from holdfast's side (the upstream leg is gone, access was revoked, a limit was
   * reached): tell the user in one line while the client leg still works, then end the channel (no
   * exit status, so OpenSSH's client exits 255).
   */
  abandon(message: string, reason: 'upstream-gone' | 'access-revoked' | 'idle-timeout' | 'session-time-limit' = 'upstream-gone'): void {
    if (this.closed) return;
    const ch = this.ch;
    this.up?.unpipe();
    this.up?.stderr.unpipe();
    if (ch && ch.writable) {
      ch.stderr.write(`\r\nholdfast: ${message}\r\n`);
      ch.end();
    }
    this.close(reason, message);
  }

  /** Idempotent; the first reason wins. */
  close(reason: GatewayChannelCloseReason, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.window?.release();
    if (reason === 'client-closed' || reason === 'session-closed') {
      this.ch?.destroy();
    }
    if (this.up && reason !== 'done') {
      this.up.unpipe();
      this.up.close();
    }
    this.hooks.closed(this, reason, detail);
  }
}
