/**
 * The worker's plan for file descriptors. Every connection holdfast holds costs one (a client's
 * socket, a socket to a target, a bastion or gateway connection), and a process that runs out of
 * them cannot even read its config again. So sessions and channels are refused with a reason
 * *before* the process is out: `maxSessions` (derived from RLIMIT_NOFILE when `auto`) caps the
 * client connections of one worker, and every socket holdfast opens takes a slot of the budget,
 * which keeps RESERVE descriptors for the config, the key files, DNS, the log and the IPC channel.
 *
 * Why this matters more than it seems: with Node's round-robin cluster scheduling, a connection
 * handed to a worker that is at its limit loses its handle, the worker never answers, and the
 * primary never hands that worker another connection (src/daemon/primary.ts explains; holdfast
 * uses SCHED_NONE for that reason).
 */
import fs from 'node:fs';
import type { EventMap } from './events.js';

/** Descriptors kept free of sockets: config and key files, DNS, the log, IPC, the admin listener. */
export const FD_RESERVE = 64;

/** Descriptors one session is planned at in `maxSessions: auto`: its socket and one channel's. */
export const FDS_PER_SESSION = 2;

/** The soft RLIMIT_NOFILE of this process (Linux /proc/self/limits); Infinity where unreadable. */
export function nofileLimit(read: () => string = () => fs.readFileSync('/proc/self/limits', 'utf8')): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(read());
    return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return Infinity;
  }
}

/** Descriptors this process holds now (Linux /proc/self/fd); 0 where unreadable. */
export function openFdCount(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

export interface FdPlan {
  /** The soft RLIMIT_NOFILE. */
  readonly limit: number;
  /** Descriptors sockets may take: the limit less what was open at start and FD_RESERVE. */
  readonly sockets: number;
  /** Client connections one worker serves at once. */
  readonly maxSessions: number;
  /** `maxSessions` was configured above what the limit supports (a start-up warning). */
  readonly tooLow?: { readonly supports: number };
}

/** `configured` is the config's maxSessions ('auto' or a number); `openAtStart` what is open now. */
export function planFds(configured: number | 'auto', limit: number, openAtStart: number): FdPlan {
  const sockets = Math.max(0, limit - openAtStart - FD_RESERVE);
  const supports = Math.max(1, Math.floor(sockets / FDS_PER_SESSION));
  if (configured === 'auto') return { limit, sockets, maxSessions: limit === Infinity ? Infinity : supports };
  return { limit, sockets, maxSessions: configured, ...(configured > supports ? { tooLow: { supports } } : {}) };
}

/** The `fd-limit-low` warning's fields when maxSessions was configured above what the limit supports. */
export function fdLimitWarning(plan: FdPlan, openAtStart: number): EventMap['fd-limit-low'] | undefined {
  const low = plan.tooLow;
  if (!low) return undefined;
  const needs = plan.maxSessions * FDS_PER_SESSION + FD_RESERVE;
  return {
    why: `maxSessions ${plan.maxSessions} needs about ${needs} file descriptors; RLIMIT_NOFILE ${plan.limit} supports ${low.supports} sessions: past that, connections and channels are refused`,
    limit: plan.limit,
    maxSessions: plan.maxSessions,
    supports: low.supports,
    fix: `raise LimitNOFILE in the systemd unit (to ${needs + openAtStart} or more), or set maxSessions: auto`,
  };
}

/** Counts the sockets holdfast holds; `take` says no once the budget is spent. */
export class FdBudget {
  private used = 0;

  constructor(
    /** Sockets it allows (a reload may plan again: `prlimit` can change a live process's limit). */
    public sockets: number,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** A socket holdfast is about to open: its give-back, or undefined (refuse: none to spare). */
  taken(): (() => void) | undefined {
    return this.used >= this.sockets ? undefined : this.hold();
  }

  /** A socket that exists already (accepted): counted even past the budget; given back once. */
  hold(): () => void {
    this.used++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.used--;
    };
  }
}

/** The process's budget: one per worker (set once at start by the server; tests make their own). */
let current = new FdBudget(Infinity);

export function fdBudget(): FdBudget {
  return current;
}

export function setFdBudget(b: FdBudget): void {
  current = b;
}
