/**
 * Keepalive on one SSH leg: the client leg, a pooled bastion connection, gateway mode's leg to the
 * target. The same rule everywhere: every chunk the leg's transport delivers counts as "received"
 * (OpenSSH's serverloop.c resets on any packet); when nothing arrives, keepalive@openssh.com probes go
 * out on the monitor's schedule and each reply gives a round-trip time; `dead` fires at the bound.
 *
 * No ssh2 here: how a probe is sent is a function from src/ssh/ping.ts, the transport is anything
 * with 'data' events, and the clock is injected (unit-tested in test/unit/keepalive.test.ts).
 * Owns: the monitor's timer and the 'data' listener; stop() releases both.
 */
import { KeepaliveMonitor, systemClock, type Clock, type MonitorStats } from './monitor.js';
import type { KeepalivePolicy } from './policy.js';

/** Sends one keepalive@openssh.com with want_reply; calls back when its reply (success or failure) arrives. */
export type SendProbe = (onReply: () => void) => void;

/** Where the leg's bytes arrive: a socket, or the stream under an ssh2 Client. */
export interface DataSource {
  on(event: 'data', fn: () => void): unknown;
  off(event: 'data', fn: () => void): unknown;
}

export interface SshLegHooks {
  /** The leg is dead under `policy`; the keepalive has stopped. */
  dead(stats: MonitorStats, policy: KeepalivePolicy): void;
  /** A probe went out (`outstanding` unanswered since the last byte received). */
  probed?(outstanding: number): void;
  /** A probe's reply came back after `rttMs`. */
  replied?(rttMs: number): void;
}

export class SshLegKeepalive {
  private readonly monitor: KeepaliveMonitor;
  private readonly onData = () => this.monitor.received();
  private stopped = false;

  constructor(
    policy: KeepalivePolicy,
    private readonly source: DataSource,
    send: SendProbe,
    hooks: SshLegHooks,
    clock: Clock = systemClock,
  ) {
    this.monitor = new KeepaliveMonitor(policy, clock, {
      probe: () => {
        const sentAt = clock.now();
        send(() => {
          if (this.stopped) return;
          const rtt = clock.now() - sentAt;
          this.monitor.replied(rtt);
          hooks.replied?.(rtt);
        });
        hooks.probed?.(this.monitor.stats().outstanding);
      },
      dead: (stats) => {
        this.stop();
        hooks.dead(stats, this.monitor.currentPolicy);
      },
    });
    source.on('data', this.onData);
  }

  get policy(): KeepalivePolicy {
    return this.monitor.currentPolicy;
  }

  /** The schedule is recomputed from the last byte received (a stricter policy takes effect at once). */
  setPolicy(p: KeepalivePolicy): void {
    this.monitor.setPolicy(p);
  }

  stats(): MonitorStats {
    return this.monitor.stats();
  }

  /** Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.monitor.stop();
    this.source.off('data', this.onData);
  }
}
