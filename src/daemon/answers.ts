/**
 * The primary waiting on its workers: one answer from each of a set of workers over the cluster IPC
 * channel (a `sessions` list, a `reloaded`), bounded in time. A worker that exits answers nothing
 * and is no longer waited for.
 */
import cluster, { type Worker } from 'node:cluster';
import { isFromWorker, type FromWorker } from './messages.js';

export class NoAnswer extends Error {
  override name = 'NoAnswer';
}

/**
 * Resolves with what `pick` took from each worker's first matching message; after `ms`, rejects
 * with NoAnswer (`strict`) or resolves with the answers so far.
 */
export function answers<T>(workers: readonly Worker[], pick: (m: FromWorker) => T | undefined, ms: number, strict: boolean): Promise<T[]> {
  const waiting = new Set(workers);
  const out: T[] = [];
  if (waiting.size === 0) return Promise.resolve(out);
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
    };
    const settle = (w: Worker) => {
      if (!waiting.delete(w) || waiting.size > 0) return;
      cleanup();
      resolve(out);
    };
    const onMessage = (w: Worker, m: unknown) => {
      if (!waiting.has(w) || !isFromWorker(m)) return;
      const v = pick(m);
      if (v === undefined) return;
      out.push(v);
      settle(w);
    };
    const onExit = (w: Worker) => settle(w);
    const timer = setTimeout(() => {
      cleanup();
      if (strict) reject(new NoAnswer(`${waiting.size} of ${workers.length} workers did not answer within ${ms} ms`));
      else resolve(out);
    }, ms);
    cluster.on('message', onMessage);
    cluster.on('exit', onExit);
  });
}
