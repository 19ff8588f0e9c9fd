/**
 * Keepalive policy: `interval` + `countMax` on one leg, the same meaning on every leg and layer.
 *
 * - A probe goes out after `interval` with nothing received on the leg, and again every `interval`
 *   while nothing is received. Anything received counts as alive and resets the count.
 * - The leg is dead when `countMax` probes are unanswered and one more `interval` passes:
 *   `interval × (countMax + 1)` after the last byte received (OpenSSH's ClientAlive/ServerAlive bound).
 * - `countMax: 0` probes but never declares the leg dead (OpenSSH's meaning; ssh2's zero means
 *   "dead after one interval", which holdfast never uses). `interval: 0` turns the leg's keepalive off.
 */
import { formatDuration } from '../config/duration.js';
import { TCP_KEEPCNT_MAX } from './tcp-options.js';

export interface KeepalivePolicy {
  /** Milliseconds; 0 = off. */
  readonly interval: number;
  readonly countMax: number;
}

export type Leg = 'client' | 'upstream';
export type Layer = 'ssh' | 'tcp';

export function isOff(p: KeepalivePolicy): boolean {
  return p.interval === 0;
}

/** Time from the last byte received to "dead", or null when the policy never declares death. */
export function detectionBoundMs(p: KeepalivePolicy): number | null {
  if (isOff(p) || p.countMax === 0) return null;
  return p.interval * (p.countMax + 1);
}

export function samePolicy(a: KeepalivePolicy, b: KeepalivePolicy): boolean {
  return a.interval === b.interval && a.countMax === b.countMax;
}

/**
 * The strictest of several policies: the shortest interval (a policy that is off is the loosest);
 * on a tie, the shorter detection bound (never-dead is the loosest). Empty list -> undefined.
 */
export function strictest(policies: readonly KeepalivePolicy[]): KeepalivePolicy | undefined {
  let best: KeepalivePolicy | undefined;
  for (const p of policies) {
    if (!best || stricter(p, best)) best = p;
  }
  return best;
}

function stricter(a: KeepalivePolicy, b: KeepalivePolicy): boolean {
  const ai = isOff(a) ? Infinity : a.interval;
  const bi = isOff(b) ? Infinity : b.interval;
  if (ai !== bi) return ai < bi;
  return (detectionBoundMs(a) ?? Infinity) < (detectionBoundMs(b) ?? Infinity);
}

export const NAT_FORGET_WARN_MS = 45_000;
export const ABUSE_WARN_MS = 5_000;
export const TCP_TERMINATING_CAVEAT =
  'TCP keepalive refreshes kernel NAT/firewall state (conntrack), but a proxy or load balancer that terminates TCP (haproxy, cloud LBs) never sees the probes and still needs payload (SSH-level probes on an SSH upstream leg)';

/** Operator warnings for one leg's policy (shown by `check` and `explain`). */
export function policyWarnings(p: KeepalivePolicy, leg: Leg, layer: Layer): string[] {
  const w: string[] = [];
  if (isOff(p)) {
    w.push(`${leg} leg: keepalive is off (interval 0): an idle session dies at the first middlebox that forgets idle flows, and a dead peer is never noticed`);
    return w;
  }
  if (p.interval > NAT_FORGET_WARN_MS) w.push(`${leg} leg: interval ${formatDuration(p.interval)} is above ${formatDuration(NAT_FORGET_WARN_MS)}: many NATs forget idle flows after 60-120 s`);
  if (p.interval < ABUSE_WARN_MS) w.push(`${leg} leg: interval ${formatDuration(p.interval)} is below ${formatDuration(ABUSE_WARN_MS)}: probes this frequent can look like abuse`);
  if (p.countMax === 0) w.push(`${leg} leg: countMax 0: probes are sent but a dead peer is never declared dead`);
  if (layer === 'tcp') {
    if (p.interval % 1000 !== 0) {
      w.push(`${leg} leg: TCP keepalive counts whole seconds: interval ${formatDuration(p.interval)} is applied as ${formatDuration(Math.ceil(p.interval / 1000) * 1000)}`);
    }
    if (p.countMax > TCP_KEEPCNT_MAX) w.push(`${leg} leg: TCP_KEEPCNT is at most ${TCP_KEEPCNT_MAX}: countMax ${p.countMax} is applied as ${TCP_KEEPCNT_MAX}`);
    w.push(`${leg} leg: ${TCP_TERMINATING_CAVEAT}`);
  }
  return w;
}

export function describePolicy(p: KeepalivePolicy): string {
  if (isOff(p)) return 'off';
  return `${formatDuration(p.interval)} x ${p.countMax}`;
}
