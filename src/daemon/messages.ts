/**
 * The primary and its workers talk over the cluster IPC channel with these messages, and only these.
 */
export type ToWorker =
  /** SIGHUP reached the primary: re-read the config. */
  | { readonly holdfast: 'reload' }
  /** An upgrade: stop accepting; sessions carry on until they end, or until `timeoutMs`. */
  | { readonly holdfast: 'drain'; readonly timeoutMs: number }
  /** SIGTERM/SIGINT reached the primary: close every session within shutdownTimeout, then exit. */
  | { readonly holdfast: 'shutdown' };

export type FromWorker =
  /** Listening: the worker serves from now on. */
  { readonly holdfast: 'ready'; readonly version: string; readonly pid: number };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && (m as { holdfast?: unknown }).holdfast === 'ready';
}

export function isToWorker(m: unknown): m is ToWorker {
  const k = typeof m === 'object' && m !== null ? (m as { holdfast?: unknown }).holdfast : undefined;
  return k === 'reload' || k === 'drain' || k === 'shutdown';
}
