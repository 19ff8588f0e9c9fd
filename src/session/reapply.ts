/**
 * A reload (SIGHUP) reaching a live session: its key is checked again (still in authorized_keys, not
 * expired, from= still matching: else the session ends with `access-revoked`), the gateway leg and
 * every `ssh -J` channel are re-matched to the routes now in force (src/routing/plan.ts: recheck*;
 * a channel no route allows any more ends with `access-revoked`), and every leg is re-planned: the
 * client leg's policy, each raw TCP socket's options (set again and read back), the pooled bastion
 * connection's and the gateway leg's keepalive; the idle and time limits follow the routes.
 */
import type { LoginKey } from '../ssh/authorized-keys.js';
import { describePolicy, samePolicy } from '../keepalive/policy.js';
import { recheckChannel } from '../routing/plan.js';
import { reauthorize } from './auth-verdict.js';
import type { ChannelRecord } from './registry.js';
import type { ClientLeg } from './client-leg.js';
import type { GatewaySession } from './gateway.js';
import type { JumpRecord } from './jump.js';
import type { SessionScope } from './scope.js';
import type { ReapplyCounts } from '../events.js';

/** What reapply needs of a session beyond what its parts see. */
export interface LiveSession extends SessionScope {
  readonly clientIp: string;
  readonly clientLeg: ClientLeg;
  readonly gateway: GatewaySession | undefined;
  /** The key's authorized_keys entry as it is now (its options may have changed). */
  rekey(entry: LoginKey): void;
  /** holdfast ends the session; in gateway mode each channel says why first. */
  endBy(reason: 'access-revoked', detail: string): void;
  /** The channels' routes changed: the session's own limits follow. */
  limitsChanged(): void;
}

export interface Reapplied {
  /** Legs whose keepalive changed. */
  readonly legs: number;
  readonly revoked: boolean;
  readonly channelsRevoked: number;
}

export function reapply(s: LiveSession): Reapplied {
  const { ctx } = s;
  const config = ctx.config();
  const revoke = (why: string): Reapplied => {
    ctx.events.emit('access-revoked', { ...s.who(), why });
    s.endBy('access-revoked', why);
    return { legs: 0, revoked: true, channelsRevoked: 0 };
  };
  const access = reauthorize(ctx.keys(), s.user, s.key, s.clientIp, new Date(), ctx.certificates());
  if (!access.ok) return revoke(access.why);
  s.rekey(access.entry);
  let legs = 0;
  let channelsRevoked = 0;
  const clientBefore = s.clientLeg.policy;
  const g = s.gateway?.reapply(s, config, ctx.guard);
  if (g && 'revoked' in g) return revoke(g.revoked);
  if (g) {
    s.clientLeg.policies.add(s.gateway!, g.route.keepalive.client, g.route.name);
    if (g.upstream) {
      legs++;
      ctx.events.emit('leg-replanned', { session: s.id, leg: 'upstream', layer: 'ssh', policy: g.upstream, dst: s.gateway!.leg!.dst, route: g.route.name });
    }
  }
  for (const rec of s.registry.list()) {
    if (!isJumpRecord(rec)) continue;
    if (!rec.routed) {
      // A forward through the gateway leg follows the gateway route.
      if (g) s.registry.setRoute(rec, g.route);
      continue;
    }
    const v = recheckChannel(s.user, s.key.options, rec.routed, config, ctx.guard);
    if (v.kind === 'refused') {
      ctx.events.emit('access-revoked', { ...s.who(), dst: rec.dst, channel: rec.id, route: rec.route?.name, why: v.why });
      rec.close('access-revoked', v.why);
      channelsRevoked++;
      continue;
    }
    s.registry.setRoute(rec, v.route);
    const changed = rec.retune(v.route);
    if (!changed) continue;
    legs++;
    const what = changed.layer === 'tcp' ? { layer: 'tcp' as const, policy: describePolicy(v.route.keepalive.upstream), tcp: { ...changed.tcp } } : { layer: 'ssh' as const, policy: changed.policy };
    ctx.events.emit('leg-replanned', { session: s.id, leg: 'upstream', ...what, channel: rec.id, dst: rec.dst, route: v.route.name });
  }
  // The routes' client policies moved through the policy set; the default (no channel) may have changed too.
  s.clientLeg.refresh();
  const now = s.clientLeg.policy;
  if (clientBefore && now && !samePolicy(clientBefore, now)) {
    legs++;
    ctx.events.emit('leg-replanned', { session: s.id, leg: 'client', layer: 'ssh', policy: describePolicy(now), routes: s.clientLeg.policies.labels() });
  }
  s.limitsChanged();
  return { legs, revoked: false, channelsRevoked };
}

/** A reload over every live session of a worker: what it changed, counted for the `reloaded` line. */
export function reapplyAll(sessions: Iterable<{ reapply(): Reapplied | null }>): ReapplyCounts {
  const live: ReapplyCounts = { sessions: 0, legsReplanned: 0, sessionsRevoked: 0, channelsRevoked: 0 };
  for (const session of sessions) {
    const r = session.reapply();
    if (!r) continue;
    live.sessions++;
    live.legsReplanned += r.legs;
    live.sessionsRevoked += r.revoked ? 1 : 0;
    live.channelsRevoked += r.channelsRevoked;
  }
  return live;
}

function isJumpRecord(rec: ChannelRecord): rec is JumpRecord {
  return 'retune' in rec;
}
