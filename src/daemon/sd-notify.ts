/**
 * systemd's readiness protocol (sd_notify(3)) for the unit's Type=notify: READY=1 once every worker
 * serves, RELOADING=1 / READY=1 around a SIGHUP, STOPPING=1 at shutdown, STATUS= for `systemctl
 * status`. Node has no AF_UNIX datagram sockets, so each message goes through systemd-notify(1),
 * which (systemd 246 and later) waits until the manager has read it (sd_notify_barrier); the unit's
 * NotifyAccess=all lets that helper speak for the main process. Without NOTIFY_SOCKET nothing is sent.
 */
import { spawn } from 'node:child_process';
import type { Events } from '../events.js';

/** A message that took longer than this is given up (systemd-notify killed). */
const SEND_TIMEOUT_MS = 5000;

export class SdNotify {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  constructor(
    private readonly events: Events,
    private readonly socket: string | undefined = process.env.NOTIFY_SOCKET,
  ) {}

  get enabled(): boolean {
    return !!this.socket;
  }

  /** Sends `vars` (e.g. READY=1, STATUS=...) in order after the ones before; resolves once read. */
  send(...vars: string[]): Promise<void> {
    if (!this.socket) return Promise.resolve();
    const next = this.chain.then(() => this.sendNow(vars));
    this.chain = next;
    return next;
  }

  private sendNow(vars: string[]): Promise<void> {
    return new Promise((resolve) => {
      let err = '';
      const p = spawn('systemd-notify', vars, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: this.socket } });
      const timer = setTimeout(() => p.kill('SIGKILL'), SEND_TIMEOUT_MS);
      p.stderr.on('data', (d) => (err += d));
      p.once('error', (e: NodeJS.ErrnoException) => (err ||= e.code === 'ENOENT' ? 'systemd-notify is not installed' : String(e)));
      p.once('close', (code, signal) => {
        clearTimeout(timer);
        if ((code !== 0 || err) && !this.warned) {
          this.warned = true;
          this.events.emit('notify-failed', {
            why: `${vars.join(' ')}: ${err.trim() || (signal ? `systemd-notify got no answer within ${SEND_TIMEOUT_MS} ms` : `systemd-notify exited ${code}`)}`,
            fix: 'the unit needs NotifyAccess=all (systemd-notify speaks for holdfast), or use Type=exec',
          });
        }
        resolve();
      });
    });
  }
}

/** MONOTONIC_USEC= for RELOADING=1 (systemd 253+ uses it to tell reloads apart). */
export function monotonicUsec(): string {
  return `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`;
}
