/**
 * A new worker's start, as the primary waits for it: its `ready` message, or its exit, or
 * workerStartTimeout, after which it is killed (an upgrade then fails instead of blocking every later
 * SIGUSR2).
 */
import type { Worker } from 'node:cluster';
import { EXIT_SOFTWARE } from '../cli/exit-codes.js';
import { isFromWorker, type FromWorker } from './messages.js';

export class WorkerHung extends Error {
  constructor(readonly ms: number) {
    super(`a new worker did not report that it serves within workerStartTimeout (${ms} ms): killed`);
  }
}

export class WorkerFailed extends Error {
  constructor(readonly code: number) {
    super(`worker exited ${code}`);
  }
}

type Ready = Extract<FromWorker, { holdfast: 'ready' }>;

/** Resolves with the worker's `ready`; rejects with WorkerFailed (it exited) or WorkerHung. */
export function whenServing(w: Worker, limitMs: number): Promise<Ready> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(hung);
      w.off('exit', onExit);
      w.off('message', onMessage);
    };
    // Hung on a file, a DNS lookup, a bug: killed.
    const hung = setTimeout(() => {
      done();
      reject(new WorkerHung(limitMs));
      w.process.kill('SIGKILL');
    }, limitMs);
    const onExit = (code: number | null) => {
      done();
      reject(new WorkerFailed(code ?? EXIT_SOFTWARE));
    };
    const onMessage = (m: unknown) => {
      if (!isFromWorker(m) || m.holdfast !== 'ready') return;
      done();
      resolve(m);
    };
    w.on('exit', onExit);
    w.on('message', onMessage);
  });
}
