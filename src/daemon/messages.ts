/**
 * The primary and its workers talk over the cluster IPC channel with these messages, and only these
 * (prom-client's own metric requests aside: src/daemon/admin.ts).
 */
import type { SessionInfo } from '../session/describe.js';
import type { StartupLimits } from '../startups.js';

export type ToWorker =
  /** SIGHUP reached the primary: re-read the config. */
  | { readonly holdfast: 'reload' }
  /** An upgrade: stop accepting; sessions carry on until they end, or until `timeoutMs`. */
  | { readonly holdfast: 'drain'; readonly timeoutMs: number }
  /** SIGTERM/SIGINT reached the primary: close every session within shutdownTimeout, then exit. */
  | { readonly holdfast: 'shutdown' }
  /** The admin API asks for the live sessions (answered with `sessions` and the same id). */
  | { readonly holdfast: 'sessions'; readonly id: number }
  /** `holdfast sessions --close`: end session `session` if this worker holds it (answered with `closed`). */
  | { readonly holdfast: 'close-session'; readonly id: number; readonly session: string; readonly why: string }
  /** The answer to a worker's `startup` (src/daemon/shared-startups.ts); `pending` is host-wide. */
  | { readonly holdfast: 'startup-verdict'; readonly id: number; readonly ok: boolean; readonly why?: string; readonly pending: number };

export type FromWorker =
  /** Listening: the worker serves from now on. */
  | { readonly holdfast: 'ready'; readonly version: string; readonly pid: number }
  | { readonly holdfast: 'sessions'; readonly id: number; readonly sessions: SessionInfo[] }
  /** The answer to `close-session`: whether this worker held (and closed) it. */
  | { readonly holdfast: 'closed'; readonly id: number; readonly found: boolean }
  /** A `reload` is done (applied, or refused with reload-failed logged). */
  | { readonly holdfast: 'reloaded' }
  /** May this unauthenticated connection from `ip` start, under the worker's limits in force? */
  | { readonly holdfast: 'startup'; readonly id: number; readonly ip: string; readonly limits: StartupLimits }
  /** The startup `id` ended (authenticated, closed, or never admitted after a timeout). */
  | { readonly holdfast: 'startup-end'; readonly id: number };

export function isFromWorker(m: unknown): m is FromWorker {
  const k = typeof m === 'object' && m !== null ? (m as { holdfast?: unknown }).holdfast : undefined;
  return k === 'ready' || k === 'sessions' || k === 'closed' || k === 'reloaded' || k === 'startup' || k === 'startup-end';
}

export function isToWorker(m: unknown): m is ToWorker {
  const k = typeof m === 'object' && m !== null ? (m as { holdfast?: unknown }).holdfast : undefined;
  return k === 'reload' || k === 'drain' || k === 'shutdown' || k === 'sessions' || k === 'close-session' || k === 'startup-verdict';
}
