/**
 * A direct-tcpip channel (`ssh -J`, `ssh -W`, `ssh -L`): plan it (src/session/plan.ts), dial its
 * upstream leg (src/session/dial.ts), then confirm it to the client and relay (src/legs/jump-channel.ts),
 * with one record in the session's registry. Refusals are answered with the reason the user's ssh
 * prints; a channel is confirmed only once its upstream leg is up, as sshd does.
 */
import type { ServerChannel } from '../ssh/ssh2.js';
import type { ResolvedConfig, ResolvedRoute } from '../config/resolve.js';
import { rejectChannel } from '../ssh/server-adapter.js';
import { JumpChannel } from '../legs/jump-channel.js';
import { describePolicy } from '../keepalive/policy.js';
import { tcpTimeoutReport } from '../keepalive/report.js';
import type { ChannelCloseReason } from '../close-reasons.js';
import { planChannel, recheckChannel, routedChannel, type Refusal, type RoutedChannel } from '../routing/plan.js';
import { dial, DialFailed, type UpstreamLeg } from './dial.js';
import type { ChannelRecord } from './registry.js';
import type { Retuned } from './dial.js';

/** An `ssh -J` channel's record: how it was routed (for a reload's re-match) and how its leg is re-tuned. */
export interface JumpRecord extends ChannelRecord {
  /** undefined for a forward through a gateway leg (it follows the gateway route). */
  readonly routed: RoutedChannel | undefined;
  retune(route: ResolvedRoute): Retuned | null;
}
import type { SessionScope } from './scope.js';

export interface DirectTcpip {
  readonly destIP: string;
  readonly destPort: number;
  readonly srcIP: string;
  readonly srcPort: number;
}

export async function openJump(
  s: SessionScope,
  accept: () => ServerChannel | undefined,
  reject: () => void,
  info: DirectTcpip,
  gateway: { leg: Parameters<typeof dial>[1]['gateway']; missing: string | undefined; login: boolean },
): Promise<void> {
  const config = s.ctx.config();
  const held = s.registry.held;
  const release = s.registry.hold('pending');
  try {
    const plan = await planChannel(
      { user: s.user, host: info.destIP, port: info.destPort, key: s.key.options, openChannels: held, gatewayLogin: gateway.login, queued: s.ctx.queued(s.user) },
      { config, lookup: s.ctx.lookup, guard: s.ctx.guard },
    );
    if (plan.kind === 'refused') return refuse(s, reject, plan);
    if (s.closing) return rejectChannel(s.conn, reject, 'connect-failed', 'session is closing');
    let leg: UpstreamLeg;
    const dialStart = performance.now();
    try {
      leg = await dial(plan, {
        pool: s.ctx.pool,
        gateway: gateway.leg,
        gatewayMissing: gateway.missing,
        connectTimeoutMs: config.connectTimeoutMs,
        signal: s.signal,
        origin: { ip: info.srcIP, port: info.srcPort },
      });
    } catch (err) {
      const f = err instanceof DialFailed ? err : new DialFailed('connect-failed', String(err), String(err), {});
      // None while the session is closing: that is why.
      if (!s.closing) s.failure('channel-connect-failed', { ...s.who(), dst: plan.dst, ...f.fields, why: f.why, code: f.code });
      return rejectChannel(s.conn, reject, 'connect-failed', f.told);
    }
    relay(s, accept, reject, leg, plan.dst, plan.kind === 'gateway' ? undefined : routedChannel(plan), performance.now() - dialStart, config);
  } finally {
    release();
  }
}

function refuse(s: SessionScope, reject: () => void, r: Refusal): void {
  const fields = { ...s.who(), dst: r.dst, why: r.why, code: r.code };
  if (r.failure === 'connect-failed') s.failure('channel-connect-failed', { ...fields, route: r.route });
  else s.failure('channel-refused', fields);
  rejectChannel(s.conn, reject, r.failure, r.told);
}

/** The upstream leg is up: confirm the channel to the client and relay (or let go). */
function relay(
  s: SessionScope,
  accept: () => ServerChannel | undefined,
  reject: () => void,
  leg: UpstreamLeg,
  dst: string,
  routed: RoutedChannel | undefined,
  connectMs: number,
  /** The config the channel was planned with. */
  plannedWith: ResolvedConfig,
): void {
  if (s.closing) {
    leg.stream.destroy();
    leg.release();
    return rejectChannel(s.conn, reject, 'connect-failed', 'session is closing');
  }
  // A reload while the leg was being dialled re-matched every live channel but this one (it was not
  // registered yet): match it now, before the client is told it is open.
  let route = leg.route;
  const now = s.ctx.config();
  if (routed && now !== plannedWith) {
    const v = recheckChannel(s.user, s.key.options, routed, now, s.ctx.guard);
    if (v.kind === 'refused') {
      leg.stream.destroy();
      leg.release();
      return refuse(s, reject, v);
    }
    route = v.route;
    leg.retune(route.keepalive.upstream, route.name);
  }
  const channel = accept();
  if (!channel) {
    leg.stream.destroy();
    leg.release();
    return;
  }
  const id = s.registry.newId();
  const jc = new JumpChannel(
    { id, dst, addr: leg.addr, upstreamKeepalive: leg.tcp?.enabled ?? false },
    channel,
    leg.stream,
    (reason, error) => closed(s, rec, jc, leg, reason, error),
    s.windowBudgets(),
  );
  const rec: JumpRecord = {
    id,
    dst,
    route,
    relay: jc,
    routed,
    close: (reason, detail) => jc.close(reason, detail),
    release: () => leg.release(),
    retune: (r) => {
      const changed = leg.retune(r.keepalive.upstream, r.name);
      if (changed?.layer === 'tcp') jc.info.upstreamKeepalive = changed.tcp.enabled;
      return changed;
    },
  };
  s.registry.add(rec);
  // A pooled bastion connection that dies ends its channels with its reason.
  leg.onLost((reason, detail) => jc.close(reason, detail));
  s.channelLine('channel-open', {
    ...s.who(),
    dst,
    addr: leg.addr,
    route: route.name,
    channel: id,
    connectMs: Math.round(connectMs * 10) / 10,
    clientKeepalive: s.clientKeepalive(),
    upstreamKeepalive: leg.tcp ? { ...leg.tcp } : { layer: 'ssh', policy: describePolicy(route.keepalive.upstream) },
  });
}

function closed(s: SessionScope, rec: ChannelRecord, jc: JumpChannel, leg: UpstreamLeg, reason: ChannelCloseReason, error?: string): void {
  s.registry.remove(rec);
  // The route now in force (a reload may have moved the channel to another).
  const route = rec.route ?? leg.route;
  if (reason === 'upstream-keepalive-timeout' && leg.tcp) {
    s.ctx.events.emit('upstream-keepalive-timeout', {
      ...s.who(),
      dst: rec.dst,
      addr: leg.addr,
      route: route.name,
      ...tcpTimeoutReport(route.keepalive.upstream, performance.now() - jc.lastUpstreamRx),
    });
  }
  s.channelLine('channel-close', {
    ...s.who(),
    dst: rec.dst,
    addr: leg.addr,
    route: route.name,
    channel: rec.id,
    reason,
    ...(error ? (reason.startsWith('upstream-') ? { error } : { detail: error }) : {}),
    bytesUp: jc.bytesUp,
    bytesDown: jc.bytesDown,
    durationMs: Date.now() - jc.openedAt,
    windowMiB: Math.round((jc.maxWindow / 1048576) * 10) / 10,
  });
}
