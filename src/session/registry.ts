/**
 * A session's channels: one record per channel (its relay, its route, its upstream leg), instead of
 * parallel maps. The registry counts what `maxChannels` limits (open, being opened, refused session
 * channels not yet closed by the client), keeps the session's totals for its summary line, and feeds
 * the client leg's policy set: a channel's route joins it on add and leaves it on remove.
 */
import type { ResolvedRoute } from '../config/resolve.js';
import type { ChannelCloseReason } from '../close-reasons.js';
import type { PolicySet } from '../keepalive/policy-set.js';

/** Destinations named in one session-close line; the rest are only counted in `channels`. */
const MAX_LOGGED_DESTINATIONS = 20;

/** What the registry reads of a relay (JumpChannel, GatewayChannel). */
export interface Relay {
  readonly openedAt: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface ChannelRecord {
  readonly id: number;
  readonly dst: string;
  /** The route the channel runs under (its client-leg policy counts); undefined before it is known. */
  readonly route: ResolvedRoute | undefined;
  readonly relay: Relay;
  /** Ends the relay (idempotent); its close comes back here as remove(). */
  close(reason: ChannelCloseReason): void;
  /** Gives back what the upstream leg holds (a pooled bastion channel). */
  release(): void;
}

export class ChannelRegistry {
  private readonly records = new Set<ChannelRecord>();
  private nextId = 0;
  /** Channel opens between the request and the relay (route lookup, connect). */
  pending = 0;
  /** Session channels accepted only to print "no shell here", until the client closes them. */
  refusedSessions = 0;
  /** Totals for the session's summary line. */
  opened = 0;
  bytesUp = 0;
  bytesDown = 0;
  readonly destinations = new Set<string>();

  constructor(private readonly clientPolicies: PolicySet<object>) {}

  newId(): number {
    return this.nextId++;
  }

  /** What maxChannels limits. */
  get held(): number {
    return this.records.size + this.pending + this.refusedSessions;
  }

  /** `relaying`: the channel carries bytes now (a gateway session channel does once the target's is open). */
  add(rec: ChannelRecord, relaying = true): void {
    this.records.add(rec);
    this.opened++;
    if (relaying) this.noteDestination(rec.dst);
    if (rec.route) this.clientPolicies.add(rec, rec.route.keepalive.client, rec.route.name);
  }

  noteDestination(dst: string): void {
    if (this.destinations.size < MAX_LOGGED_DESTINATIONS) this.destinations.add(dst);
  }

  /** The relay has closed: release its leg, count its bytes. Idempotent. */
  remove(rec: ChannelRecord): void {
    if (!this.records.delete(rec)) return;
    rec.release();
    this.bytesUp += rec.relay.bytesUp;
    this.bytesDown += rec.relay.bytesDown;
    this.clientPolicies.remove(rec);
  }

  closeAll(reason: ChannelCloseReason): void {
    for (const rec of [...this.records]) rec.close(reason);
  }
}
