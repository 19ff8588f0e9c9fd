/**
 * One live session as the admin API's `/sessions` and `holdfast sessions` show it: who, from where,
 * how, where to, for how long, bytes each way, and each leg's keepalive figures. No secrets (no key
 * material; the key's fingerprint is in the auth-accepted log line).
 */
import type { MonitorStats } from '../keepalive/monitor.js';
import type { Session } from '../session.js';

export interface SessionInfo {
  readonly id: string;
  readonly user: string | null;
  readonly src: string;
  readonly mode: 'jump' | 'gateway' | null;
  readonly routes: string[];
  readonly destinations: string[];
  readonly ageS: number;
  readonly channels: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly client: LegInfo | null;
  /** The gateway leg (gateway mode), or each channel's upstream layer (ssh -J). */
  readonly upstream: LegInfo | { readonly layer: 'tcp' | 'ssh'; readonly channels: number } | null;
  readonly worker?: number;
  /** A resumable session (holdfast connect) waiting for its helper: seconds since it detached. */
  readonly detachedS?: number;
}

export interface LegInfo {
  readonly state: string;
  readonly lastRttMs: number | null;
  readonly srttMs: number | null;
  readonly probesSent: number;
  readonly probesAnswered: number;
}

function leg(state: string, s: MonitorStats | undefined): LegInfo | null {
  if (!s) return null;
  const r = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  return { state, lastRttMs: r(s.lastRttMs), srttMs: r(s.srttMs), probesSent: s.probesSent, probesAnswered: s.probesAnswered };
}

export function describeSession(s: Session): SessionInfo {
  const records = s.registry.list();
  const routes = new Set<string>();
  for (const rec of records) if (rec.route) routes.add(rec.route.name);
  const g = s.gateway?.leg;
  if (g?.route) routes.add(g.route.name);
  let up = s.registry.bytesUp;
  let down = s.registry.bytesDown;
  for (const rec of records) {
    up += rec.relay.bytesUp;
    down += rec.relay.bytesDown;
  }
  const mode = s.mode ?? null;
  return {
    id: s.id,
    user: mode ? s.user : null,
    src: s.src,
    mode,
    routes: [...routes],
    destinations: g ? [g.dst] : [...new Set(records.map((r) => r.dst))],
    ageS: Math.round((Date.now() - s.startedAt) / 1000),
    channels: records.length,
    bytesUp: up,
    bytesDown: down,
    client: leg(s.state, s.clientLeg.stats()),
    upstream: g
      ? leg(g.stats() ? 'open' : 'connecting', g.stats()) ?? { layer: 'ssh', channels: records.length }
      : records.length
        ? { layer: records.some((r) => r.route?.via) ? 'ssh' : 'tcp', channels: records.length }
        : null,
  };
}
