/**
 * A session's channels: one record per channel (its relay, its route, its upstream leg), instead of
 * parallel maps. The registry counts what `maxChannels` limits (open, being opened, refused session
 * channels not yet closed by the client), keeps the session's totals for its summary line, and owns
 * what follows a channel's route: its entry in the client leg's policy set and its idle watch
 * (src/session/limits.ts). A reload moves a record to its new route with setRoute().
 */
import type { ResolvedRoute } from '../config/resolve.js';
import type { ChannelCloseReason } from '../close-reasons.js';
import type { PolicySet } from '../keepalive/policy-set.js';
import { IdleWatch } from './limits.js';

/** Destinations named in one session-close line; the rest are only counted in `channels`. */
const MAX_LOGGED_DESTINATIONS = 20;

/** What the registry reads of a relay (JumpChannel, GatewayChannel). */
export interface Relay {
  readonly openedAt: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Bytes holdfast holds for the target: unread in the client's channel and queued toward the target. */
  readonly queuedBytes: number;
}

export interface ChannelRecord {
  readonly id: number;
  readonly dst: string;
  /** The route the channel runs under (its policies and limits count); undefined until it is known. */
  route: ResolvedRoute | undefined;
  readonly relay: Relay;
  /** Ends the relay (idempotent); its close comes back here as remove(). */
  close(reason: ChannelCloseReason, detail?: string): void;
  /** Gives back what the upstream leg holds (a pooled bastion channel). */
  release(): void;
  /** A line on the user's terminal (gateway session channels only). */
  notice?(line: string): void;
}

export interface RegistryHooks {
  /** The set of records or their routes changed (limits that depend on them are recomputed). */
  changed(): void;
  /** A channel's idle watch fired. */
  idle(rec: ChannelRecord, timeoutMs: number): void;
  /** A channel is `remainingMs` from its idle limit (records with notice() only). */
  idleWarning(rec: ChannelRecord, remainingMs: number, timeoutMs: number): void;
}

export class ChannelRegistry {
  private readonly records = new Map<ChannelRecord, { idle: IdleWatch | undefined }>();
  private nextId = 0;
  /** Channel opens between the request and the relay (route lookup, connect). */
  private pending = 0;
  /** Session channels accepted only to print "no shell here", until the client closes them. */
  private refusedSessions = 0;
  /** Totals for the session's summary line. */
  opened = 0;
  bytesUp = 0;
  bytesDown = 0;
  readonly destinations = new Set<string>();

  constructor(
    private readonly clientPolicies: PolicySet<object>,
    private readonly hooks: RegistryHooks,
  ) {}

  newId(): number {
    return this.nextId++;
  }

  /**
   * A channel being opened (`pending`: route lookup, connect) or a refused session channel the client
   * has not closed yet: held against maxChannels until the returned function is called (idempotent).
   */
  /** What the channels hold for their targets (maxQueuedMiBPerUser, maxQueuedMiB). */
  queuedBytes(): number {
    let n = 0;
    for (const rec of this.records.keys()) n += rec.relay.queuedBytes;
    return n;
  }

  hold(kind: 'pending' | 'refused-session'): () => void {
    const field = kind === 'pending' ? 'pending' : 'refusedSessions';
    this[field]++;
    this.hooks.changed();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this[field]--;
      this.hooks.changed();
    };
  }

  /** What maxChannels limits. */
  get held(): number {
    return this.records.size + this.pending + this.refusedSessions;
  }

  get size(): number {
    return this.records.size;
  }

  list(): ChannelRecord[] {
    return [...this.records.keys()];
  }

  forEach(fn: (rec: ChannelRecord) => void): void {
    for (const rec of this.records.keys()) fn(rec);
  }

  /** The routes of the open channels (each once). */
  routes(): ResolvedRoute[] {
    const out = new Set<ResolvedRoute>();
    for (const rec of this.records.keys()) if (rec.route) out.add(rec.route);
    return [...out];
  }

  /** `relaying`: the channel carries bytes now (a gateway session channel does once the target's is open). */
  add(rec: ChannelRecord, relaying = true): void {
    this.records.set(rec, { idle: undefined });
    this.opened++;
    if (relaying) this.noteDestination(rec.dst);
    const route = rec.route;
    rec.route = undefined;
    if (route) this.setRoute(rec, route);
    else this.hooks.changed();
  }

  /**
   * The channel runs under `route` from now on (it became known, or a reload re-matched it): its
   * client-leg policy, its idle limit (the idleness so far counts). Returns false for a record that
   * is gone.
   */
  setRoute(rec: ChannelRecord, route: ResolvedRoute): boolean {
    const entry = this.records.get(rec);
    if (!entry) return false;
    rec.route = route;
    this.clientPolicies.add(rec, route.keepalive.client, route.name);
    const ms = route.idleTimeoutMs;
    if (entry.idle) entry.idle.setTimeout(ms);
    else if (ms > 0) {
      const activity = () => rec.relay.bytesUp + rec.relay.bytesDown;
      entry.idle = new IdleWatch(ms, activity, {
        expire: () => this.hooks.idle(rec, entry.idle?.timeout ?? ms),
        ...(rec.notice ? { warn: (left: number) => this.hooks.idleWarning(rec, left, entry.idle?.timeout ?? ms) } : {}),
      });
    }
    this.hooks.changed();
    return true;
  }

  noteDestination(dst: string): void {
    if (this.destinations.size < MAX_LOGGED_DESTINATIONS) this.destinations.add(dst);
  }

  /** The relay has closed: release its leg, count its bytes. Idempotent. */
  remove(rec: ChannelRecord): void {
    const entry = this.records.get(rec);
    if (!entry) return;
    this.records.delete(rec);
    entry.idle?.stop();
    rec.release();
    this.bytesUp += rec.relay.bytesUp;
    this.bytesDown += rec.relay.bytesDown;
    this.clientPolicies.remove(rec);
    this.hooks.changed();
  }

  closeAll(reason: ChannelCloseReason): void {
    for (const rec of this.list()) rec.close(reason);
  }
}
