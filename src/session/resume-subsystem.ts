/**
 * The `holdfast-resume` subsystem: the transport of `holdfast connect` (src/cli/connect.ts). Its first
 * frame is a HELLO: open a resumable session to a destination, or resume one with its secret. An open
 * is planned, refused and dialled exactly like an `ssh -J` channel to the same destination (routes,
 * the key's options, limits, the same refusal codes and words); a resume needs this login's user and
 * the session's secret. The session (src/resume/leg.ts) then outlives this connection: while it is
 * attached here it is one of this connection's channels (client keepalive, limits, bytes).
 */
import { FRAME, FrameError, FrameReader, jsonFrame } from '../resume/frames.js';
import { ResumableLeg } from '../resume/leg.js';
import type { ResumableEntry } from '../resume/registry.js';
import { planChannel, type Refusal } from '../routing/plan.js';
import { dial, DialFailed, type UpstreamLeg } from './dial.js';
import type { ChannelRecord } from './registry.js';
import type { SessionScope } from './scope.js';
import type { ServerChannel } from '../ssh/ssh2.js';
import crypto from 'node:crypto';

const HELLO_TIMEOUT_MS = 10_000;
const FAILURE_WORDS = { prohibited: 'administratively prohibited', 'connect-failed': 'connect failed', 'resource-shortage': 'resource shortage', 'unknown-type': 'unknown channel type' } as const;

type Hello = { v: 1; dst: { host: string; port: number } } | { v: 1; resume: string; received: number; sent: number };

/** Where an entry's leg is attached now: the session and its channel record. */
const attachedTo = new WeakMap<ResumableEntry, { s: SessionScope; rec: ChannelRecord }>();

export function resumeSubsystem(s: SessionScope, acceptReq: () => ServerChannel | undefined): void {
  const ch = acceptReq();
  if (!ch) return;
  ch.on('error', () => {});
  let done = false;
  const tell = (code: string, message: string) => {
    done = true;
    ch.write(Buffer.concat(jsonFrame(FRAME.REFUSED, { code, message })));
    ch.end();
  };
  const timer = setTimeout(() => tell('bad-hello', 'holdfast: no HELLO from holdfast connect'), HELLO_TIMEOUT_MS);
  const reader = new FrameReader((type, payload) => {
    if (done) throw new FrameError('bytes after the HELLO before the WELCOME');
    done = true;
    clearTimeout(timer);
    ch.off('data', onData);
    const hello = type === FRAME.HELLO ? parseHello(payload) : undefined;
    if (!hello) return refuseResume(s, tell, 'bad-hello', 'the first frame is not a HELLO holdfast understands', 'holdfast: not a holdfast connect HELLO (update holdfast connect)');
    if ('dst' in hello) void open(s, ch, hello.dst, tell);
    else resume(s, ch, hello, tell);
  });
  const onData = (d: Buffer) => {
    try {
      reader.push(d);
    } catch (err) {
      clearTimeout(timer);
      if (!done) tell('bad-hello', `holdfast: ${(err as Error).message}`);
    }
  };
  ch.on('data', onData);
  ch.once('close', () => clearTimeout(timer));
}

function parseHello(payload: Buffer): Hello | undefined {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const h = v as Record<string, unknown>;
  if (!h || h.v !== 1) return undefined;
  const d = h.dst as Record<string, unknown> | undefined;
  if (d && typeof d.host === 'string' && Number.isInteger(d.port)) return { v: 1, dst: { host: d.host, port: d.port as number } };
  if (typeof h.resume === 'string' && Number.isSafeInteger(h.received) && Number.isSafeInteger(h.sent)) return { v: 1, resume: h.resume, received: h.received as number, sent: h.sent as number };
  return undefined;
}

function refuseResume(s: SessionScope, tell: (code: string, m: string) => void, cause: 'unknown' | 'other-user' | 'other-source' | 'bad-hello' | 'bad-offset' | 'detached-limit', why: string, told: string): void {
  s.failure('resume-refused', { ...s.who(), cause, why });
  tell(cause, told);
}

function refusalWords(r: Pick<Refusal, 'failure' | 'told'>): string {
  return `channel 0: open failed: ${FAILURE_WORDS[r.failure]}: ${r.told}`;
}

async function open(s: SessionScope, ch: ServerChannel, dst: { host: string; port: number }, tell: (code: string, m: string) => void): Promise<void> {
  const config = s.ctx.config();
  const release = s.registry.hold('pending');
  let leg: UpstreamLeg;
  let plan;
  try {
    plan = await planChannel(
      { user: s.user, host: dst.host, port: dst.port, key: s.key.options, openChannels: s.registry.held - 1, gatewayLogin: false, queued: s.ctx.queued(s.user) },
      { config, lookup: s.ctx.lookup, guard: s.ctx.guard },
    );
    if (plan.kind === 'refused') {
      const fields = { ...s.who(), dst: plan.dst, why: plan.why, code: plan.code };
      if (plan.failure === 'connect-failed') s.failure('channel-connect-failed', { ...fields, route: plan.route });
      else s.failure('channel-refused', fields);
      return tell(plan.code, refusalWords(plan));
    }
    if (plan.kind === 'gateway') return tell('gateway', 'holdfast: holdfast connect takes a plain login (user@jump), not a gateway login');
    try {
      leg = await dial(plan, { pool: s.ctx.pool, gateway: undefined, gatewayMissing: undefined, connectTimeoutMs: config.connectTimeoutMs, signal: s.signal, origin: { ip: s.clientIp, port: 0 } });
    } catch (err) {
      const f = err instanceof DialFailed ? err : new DialFailed('connect-failed', String(err), String(err), {});
      if (!s.closing) s.failure('channel-connect-failed', { ...s.who(), dst: plan.dst, ...f.fields, why: f.why, code: f.code });
      return tell(f.code, refusalWords({ failure: 'connect-failed', told: f.told }));
    }
  } finally {
    release();
  }
  if (s.closing || ch.destroyed) {
    leg.stream.destroy();
    leg.release();
    return;
  }
  const route = leg.route;
  const secret = s.ctx.resumes.newSecret();
  const id = crypto.randomBytes(4).toString('hex');
  let entry: ResumableEntry | undefined;
  const rl = new ResumableLeg(leg.stream, { detachTimeoutMs: route.resume.detachTimeoutMs, bufferBytes: config.resume.bufferBytes }, {
    detached: (why, held) => {
      unregister(entry!);
      s.ctx.events.emit('session-detached', { resumable: id, user: s.user, dst: plan.dst, src: entry!.src, why, heldBytes: held, detachTimeoutMs: route.resume.detachTimeoutMs });
      enforceDetachedCap(s, entry!);
    },
    closed: (reason, detail) => {
      unregister(entry!);
      s.ctx.resumes.remove(entry!);
      leg.release();
      s.ctx.events.emit('resume-close', { resumable: id, user: s.user, dst: plan.dst, reason, ...(detail ? { detail } : {}), bytesUp: rl.bytesUp, bytesDown: rl.bytesDown, durationMs: Date.now() - rl.openedAt, resumes: rl.resumes });
    },
  });
  entry = { id, user: s.user, dst: plan.dst, route, leg: rl, src: s.src, clientIp: s.clientIp, key: s.key, sameSource: route.resume.sameSource, secret };
  s.ctx.resumes.add(entry);
  s.ctx.events.emit('resume-open', { ...s.who(), resumable: id, dst: plan.dst, addr: leg.addr, route: route.name, detachTimeoutMs: route.resume.detachTimeoutMs, bufferBytes: config.resume.bufferBytes });
  const r = rl.attach(ch, 0, { token: secret.toString('base64url'), id, detachTimeoutMs: route.resume.detachTimeoutMs });
  if ('refused' in r) return rl.close('upstream-error', r.refused);
  register(s, entry);
}

function resume(s: SessionScope, ch: ServerChannel, hello: Extract<Hello, { resume: string }>, tell: (code: string, m: string) => void): void {
  const found = s.ctx.resumes.find(s.user, Buffer.from(hello.resume, 'base64url'));
  if ('refused' in found) {
    return refuseResume(s, tell, found.refused, found.refused === 'unknown' ? 'no resumable session has that secret' : 'the secret is another user\'s session', 'holdfast: no such session to resume (it ended, or holdfast restarted)');
  }
  const e = found.entry;
  const previousIp = e.src.slice(0, e.src.lastIndexOf(':'));
  if (e.sameSource && previousIp !== s.clientIp) {
    return refuseResume(s, tell, 'other-source', `resume from ${s.src}, the session came from ${e.src} (resume.sameSource)`, `holdfast: this session may only be resumed from ${previousIp} (resume.sameSource)`);
  }
  const gapMs = e.leg.detachedAt === undefined ? 0 : performance.now() - e.leg.detachedAt;
  const replayedUp = Math.max(0, hello.sent - e.leg.bytesUp);
  const r = e.leg.attach(ch, hello.received, { detachTimeoutMs: e.route.resume.detachTimeoutMs });
  if ('refused' in r) return refuseResume(s, tell, 'bad-offset', r.refused, 'holdfast: the helper\'s byte count does not match this session');
  // Attached here now: no longer a channel of the connection it was on (attach() detached it there).
  unregister(e);
  e.leg.resumes++;
  const previousSrc = e.src;
  e.src = s.src;
  e.clientIp = s.clientIp;
  register(s, e);
  s.ctx.events.emit('session-resumed', { ...s.who(), resumable: e.id, dst: e.dst, previousSrc, gapMs: Math.round(gapMs), replayedDown: r.replayed, replayedUp, resumes: e.leg.resumes });
}

/** The leg is attached to this connection: one of its channels (keepalive policy, limits, bytes). */
function register(s: SessionScope, e: ResumableEntry): void {
  const rec: ChannelRecord = {
    id: s.registry.newId(),
    dst: e.dst,
    route: e.route,
    relay: e.leg,
    // The connection carrying it ended: the leg waits for its helper, unless an operator ended the
    // session (then the helper must not bring it back).
    close: (reason, detail) => (reason === 'admin-closed' ? e.leg.close('admin-closed', detail) : e.leg.detach(`the SSH connection carrying it ended`)),
    release: () => {},
  };
  attachedTo.set(e, { s, rec });
  s.registry.add(rec);
}

/** No longer one of the channels of the connection it was attached to (if any). */
function unregister(e: ResumableEntry): void {
  const at = attachedTo.get(e);
  if (!at) return;
  attachedTo.delete(e);
  at.s.registry.remove(at.rec);
}

/** One more detached session than `resume.maxDetachedPerUser` closes the user's oldest detached one. */
function enforceDetachedCap(s: SessionScope, e: ResumableEntry): void {
  const max = s.ctx.config().resume.maxDetachedPerUser;
  const detached = s.ctx.resumes.detachedOf(e.user);
  for (const old of detached.slice(0, Math.max(0, detached.length - max))) old.leg.close('detach-timeout', `${e.user} has more than ${max} detached sessions (resume.maxDetachedPerUser)`);
}
