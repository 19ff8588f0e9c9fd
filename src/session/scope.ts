/**
 * What the parts of a session (src/session/*.ts) see of it, and what the server gives every session.
 * The session (src/session.ts) owns the lifecycle; the parts decide and relay, and end it only
 * through close().
 */
import type { ResumeRegistry } from '../resume/registry.js';
import type { Queued } from '../queued-bytes.js';
import type { ResolvedConfig } from '../config/resolve.js';
import type { SessionCloseReason } from '../close-reasons.js';
import type { EventMap, EventName, Events, Who } from '../events.js';
import type { AuthorizedKeysStore } from '../ssh/auth.js';
import type { CertificateFiles } from '../ssh/user-ca.js';
import type { LoginKey } from '../ssh/authorized-keys.js';
import type { Connection } from '../ssh/ssh2.js';
import type { WindowBudget } from '../ssh/channel-window.js';
import type { AddressGuard } from '../routing/guard.js';
import type { Lookup } from '../routing/resolve-destination.js';
import type { UpstreamPool } from '../legs/ssh-upstream.js';
import type { ChannelRegistry } from './registry.js';

export interface SessionContext {
  /** Read at each use, so a reload applies to the next decision. */
  readonly config: () => ResolvedConfig;
  readonly events: Events;
  readonly keys: () => AuthorizedKeysStore;
  /** Certificate trust and revocation files (trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys). */
  readonly certificates: () => CertificateFiles;
  readonly lookup: Lookup;
  readonly pool: UpstreamPool;
  /** Receive windows beyond ssh2's 2 MiB come out of this (src/ssh/channel-window.ts). */
  readonly windowBudget: WindowBudget;
  /** The user's share of window growth, across their connections; release() when the session ends. */
  readonly userWindowBudget: (user: string) => { readonly budget: WindowBudget; release(): void };
  /** Addresses wildcards never reach (loopback, link-local, holdfast's own: bound once, at start). */
  readonly guard: AddressGuard;
  /** A login of `user` (maxConnectionsPerUser): its release, or how many the user holds already. */
  readonly holdLogin: (user: string) => (() => void) | { readonly held: number; readonly max: number };
  /** Bytes held for targets that are not reading: by this user's channels, and by all (src/queued-bytes.ts). */
  readonly queued: (user: string) => Queued;
  /** The worker's resumable sessions (`holdfast connect`). */
  readonly resumes: ResumeRegistry;
}

export interface SessionScope {
  readonly id: string;
  readonly ctx: SessionContext;
  readonly conn: Connection;
  /** The authenticated user and the authorized_keys line that let them in. */
  readonly user: string;
  readonly key: LoginKey;
  readonly registry: ChannelRegistry;
  /** Aborted when the session closes: pending lookups and connects give up. */
  readonly signal: AbortSignal;
  readonly closing: boolean;
  /** The port the client connected to (for "use it with -J" hints). */
  readonly localPort: number;
  /** The client's address (unmapped IPv4), for `resume.sameSource`. */
  readonly clientIp: string;
  readonly src: string;
  who(): Who;
  /** A client-caused warn line, within the connection's line budget (src/session.ts). */
  failure<K extends EventName>(event: K, fields: EventMap[K]): void;
  /** channel-open / channel-close, logged up to a per-connection budget (then only counted). */
  channelLine<K extends 'channel-open' | 'channel-close'>(event: K, fields: EventMap[K]): void;
  /** The client leg's policy in words, for channel-open lines. */
  clientKeepalive(): string | undefined;
  /** Window growth comes out of the process's, this user's and this connection's budgets at once. */
  windowBudgets(): WindowBudget[];
  /** Graceful: the user's ssh is told why. */
  close(reason: SessionCloseReason, detail?: string): void;
}
