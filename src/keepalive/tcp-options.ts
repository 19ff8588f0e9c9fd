/**
 * A keepalive policy as Linux TCP socket options for the raw TCP upstream leg of `ssh -J`.
 *
 * TCP_KEEPIDLE = TCP_KEEPINTVL = interval and TCP_KEEPCNT = countMax give the kernel the same bound
 * as the SSH legs: the first probe after `interval` idle, one every `interval`, dead after countMax
 * unanswered (= interval × (countMax+1)). TCP_USER_TIMEOUT = that bound also catches data left
 * unacknowledged by a vanished peer (keepalive only runs on an idle socket).
 * Kernel limits are handled on purpose: the options count whole seconds (a sub-second interval is
 * rounded up to 1 s) and TCP_KEEPCNT is 1..127 (countMax 0, "never dead", becomes 127 probes with no
 * user timeout; above 127 is clamped).
 */
import type { KeepalivePolicy } from './policy.js';

export interface TcpKeepaliveOptions {
  readonly enable: boolean;
  readonly idleS: number;
  readonly intervalS: number;
  readonly count: number;
  /** 0 = kernel default (off). */
  readonly userTimeoutMs: number;
}

export const TCP_KEEPCNT_MAX = 127;

export function tcpKeepaliveOptions(p: KeepalivePolicy): TcpKeepaliveOptions {
  if (p.interval === 0) return { enable: false, idleS: 0, intervalS: 0, count: 0, userTimeoutMs: 0 };
  const s = Math.max(1, Math.ceil(p.interval / 1000));
  if (p.countMax === 0) return { enable: true, idleS: s, intervalS: s, count: TCP_KEEPCNT_MAX, userTimeoutMs: 0 };
  const count = Math.min(p.countMax, TCP_KEEPCNT_MAX);
  return { enable: true, idleS: s, intervalS: s, count, userTimeoutMs: s * 1000 * (count + 1) };
}
