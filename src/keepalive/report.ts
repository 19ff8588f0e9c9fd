/**
 * The figures of every *-keepalive-timeout report and keepalive summary, whatever the leg and layer:
 * the policy, probes sent and answered, the last RTT, the time since the last byte. One builder, so
 * the client leg, the bastion and gateway SSH legs and the raw TCP leg of `ssh -J` report alike.
 */
import type { MonitorStats } from './monitor.js';
import type { KeepalivePolicy, Layer, Leg } from './policy.js';
import { tcpKeepaliveOptions } from './tcp-options.js';
import type { TimeoutReport } from '../events.js';

/** RTTs in logs: milliseconds with two decimals. */
export function rttForLog(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 100) / 100;
}

/** A leg died: the fields of its timeout line. */
export function timeoutReport(leg: Leg, layer: Layer, p: KeepalivePolicy, s: Pick<MonitorStats, 'probesSent' | 'probesAnswered' | 'lastRttMs' | 'idleMs'>): TimeoutReport {
  return {
    reason: leg === 'client' ? 'client-keepalive-timeout' : 'upstream-keepalive-timeout',
    leg,
    layer,
    interval: p.interval,
    countMax: p.countMax,
    probesSent: s.probesSent,
    probesAnswered: s.probesAnswered,
    lastRttMs: rttForLog(s.lastRttMs),
    idleMs: Math.round(s.idleMs),
  };
}

/**
 * The raw TCP leg of `ssh -J` died of keepalive: the kernel declared it dead only after TCP_KEEPCNT
 * unanswered probes (or TCP_USER_TIMEOUT with data unacknowledged); it reports no RTTs to userspace.
 */
export function tcpTimeoutReport(p: KeepalivePolicy, idleMs: number): TimeoutReport {
  return timeoutReport('upstream', 'tcp', p, { probesSent: tcpKeepaliveOptions(p).count, probesAnswered: 0, lastRttMs: null, idleMs });
}

/** A leg's keepalive figures for a close line. */
export function statsForLog(s: MonitorStats): { probesSent: number; probesAnswered: number; lastRttMs: number | null; srttMs: number | null } {
  return { probesSent: s.probesSent, probesAnswered: s.probesAnswered, lastRttMs: rttForLog(s.lastRttMs), srttMs: rttForLog(s.srttMs) };
}
