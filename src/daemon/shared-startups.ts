/**
 * One startup gate for every worker (sshd's MaxStartups and PerSourceMaxStartups are host-wide; with
 * a gate per worker, `workers: 4` would admit four times as many unauthenticated connections, and an
 * upgrade's two generations twice). The primary keeps the only StartupGate (StartupLedger); each
 * worker asks it over the cluster IPC channel before a connection's first SSH byte (SharedStartups)
 * and says when the startup ends (authenticated or closed). A worker that exits gives back what it
 * held. The limits travel with each request: they are the worker's config in force, reloads included.
 */
import { StartupGate, type Admission, type StartupAdmitter, type StartupLimits } from '../startups.js';
import type { FromWorker, ToWorker } from './messages.js';

/** How long a worker waits for the primary's verdict before refusing the connection. */
export const PRIMARY_ANSWER_MS = 5_000;

type Verdict = Extract<ToWorker, { holdfast: 'startup-verdict' }>;
type Request = Extract<FromWorker, { holdfast: 'startup' }>;

/** The primary's side: admissions held per worker id. */
export class StartupLedger {
  private readonly gate: StartupGate;
  private readonly held = new Map<number, Map<number, () => void>>();

  constructor(random?: () => number) {
    this.gate = new StartupGate(random);
  }

  get pending(): number {
    return this.gate.pendingStartups;
  }

  request(worker: number, m: Request): Verdict {
    const a = this.gate.admit(m.ip, m.limits);
    if (!a.ok) return { holdfast: 'startup-verdict', id: m.id, ok: false, why: a.why, pending: a.pending };
    const mine = this.held.get(worker) ?? new Map<number, () => void>();
    this.held.set(worker, mine);
    mine.set(m.id, a.release);
    return { holdfast: 'startup-verdict', id: m.id, ok: true, pending: this.gate.pendingStartups };
  }

  end(worker: number, id: number): void {
    const mine = this.held.get(worker);
    mine?.get(id)?.();
    mine?.delete(id);
    if (mine?.size === 0) this.held.delete(worker);
  }

  /** The worker exited: every startup it held ends. Returns how many. */
  workerGone(worker: number): number {
    const mine = this.held.get(worker);
    this.held.delete(worker);
    for (const release of mine?.values() ?? []) release();
    return mine?.size ?? 0;
  }
}

/** A worker's side: asks the primary, and refuses when it does not answer in time. */
export class SharedStartups implements StartupAdmitter {
  private nextId = 0;
  private readonly waiting = new Map<number, (v: Verdict) => void>();

  constructor(
    private readonly send: (m: FromWorker) => void,
    private readonly answerMs = PRIMARY_ANSWER_MS,
  ) {}

  admit(ip: string, limits: StartupLimits): Promise<Admission> {
    const id = ++this.nextId;
    return new Promise<Admission>((resolve) => {
      // IPC is asynchronous: no verdict can arrive before the request is sent.
      if (!this.trySend({ holdfast: 'startup', id, ip, limits })) return resolve({ ok: false, why: 'the primary process is gone', pending: -1 });
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        // Sent after the request: if the primary admitted it after all, this gives it back.
        this.trySend({ holdfast: 'startup-end', id });
        resolve({ ok: false, why: `the primary process did not answer within ${this.answerMs} ms`, pending: -1 });
      }, this.answerMs);
      this.waiting.set(id, (v) => {
        clearTimeout(timer);
        if (!v.ok) return resolve({ ok: false, why: v.why ?? 'refused', pending: v.pending });
        let ended = false;
        resolve({
          ok: true,
          release: () => {
            if (ended) return;
            ended = true;
            this.trySend({ holdfast: 'startup-end', id });
          },
        });
      });
    });
  }

  /** The primary's answer (src/daemon/worker.ts hands each `startup-verdict` here). */
  verdict(v: Verdict): void {
    const done = this.waiting.get(v.id);
    this.waiting.delete(v.id);
    done?.(v);
  }

  private trySend(m: FromWorker): boolean {
    try {
      this.send(m);
      return true;
    } catch {
      return false;
    }
  }
}
