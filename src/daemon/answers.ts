/**
 * The primary waiting on its workers: one answer from each of a set of workers over the cluster IPC
 * channel (a `sessions` list, a `reloaded`), bounded in time. A worker that exits answers nothing
 * and is no longer waited for.
 */
import cluster, { type Worker } from 'node:cluster';
import { isFromWorker, type FromWorker, type ToWorker } from './messages.js';

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

let requests = 0;

/**
 * One request to each of `workers`, numbered so that an answer to an earlier request is not taken
 * for this one (`pick` gets the number); each answer within `ms` (NoAnswer otherwise).
 */
export function askEvery<T>(workers: readonly Worker[], request: (id: number) => ToWorker, pick: (m: FromWorker, id: number) => T | undefined, ms: number): Promise<T[]> {
  const id = ++requests;
  const got = answers(workers, (m) => pick(m, id), ms, true);
  for (const w of workers) w.send(request(id));
  return got;
}
