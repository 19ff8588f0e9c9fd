/**
 * The limits a session enforces besides keepalive: a channel idle for `idleTimeout` (OpenSSH's
 * ChannelTimeout), and `maxSessionTime`, an absolute bound. Both can warn first (gateway mode prints
 * a line on the user's stderr 60 s before, or at half a shorter limit).
 *
 * Activity is read from the channel's byte counters when the watch looks, never per chunk: the data
 * path stays free of JavaScript work, and keepalive traffic (connection-level requests, TCP
 * keepalive) never shows in a channel's counters, so it never counts as activity. The watch looks
 * every 1/8 of the timeout (100 ms to 60 s), so a channel that falls silent is closed between T and
 * T + T/8 after its last byte; one silent from the start, at T. The clock is injected
 * (unit-tested in test/unit/limits.test.ts). Each watch owns one timer; stop() clears it.
 */
import { ClockTimer, systemClock, type Clock } from '../keepalive/monitor.js';

export const WARN_LEAD_MS = 60_000;

/** How long before a limit of `ms` the user is warned: 60 s, or half of a shorter limit. */
export function warnLead(ms: number): number {
  return Math.min(WARN_LEAD_MS, Math.floor(ms / 2));
}

/** A time left or passed, for a line on the user's terminal: "1.5s", "45s", "2m". */
export function roughly(ms: number): string {
  if (ms >= 120_000) return `${Math.round(ms / 60_000)}m`;
  if (ms >= 10_000) return `${Math.round(ms / 1000)}s`;
  return `${Math.round(ms / 100) / 10}s`;
}

export interface LimitHooks {
  /** The limit is `remainingMs` away (once per approach; only when given). */
  warn?(remainingMs: number): void;
  /** The limit is reached; the watch has stopped. */
  expire(): void;
}

/** What both limits share: one timer, the hooks, a warning given at most once per approach. */
abstract class Limit {
  protected readonly timer: ClockTimer;
  protected warned = false;
  protected stopped = false;

  constructor(
    protected readonly hooks: LimitHooks,
    protected readonly clock: Clock,
  ) {
    this.timer = new ClockTimer(clock);
  }

  stop(): void {
    this.stopped = true;
    this.timer.clear();
  }

  /** The limit is reached: stopped, then told. */
  protected reached(): void {
    this.stop();
    this.hooks.expire();
  }

  protected warn(leftMs: number): void {
    this.warned = true;
    this.hooks.warn?.(leftMs);
  }
}

/** Closes what has carried no data for `timeoutMs` (0 = off). */
export class IdleWatch extends Limit {
  private lastCount: number;
  private lastActive: number;

  constructor(
    private timeoutMs: number,
    /** A counter that grows with activity (bytes either way). */
    private readonly activity: () => number,
    hooks: LimitHooks,
    clock: Clock = systemClock,
  ) {
    super(hooks, clock);
    this.lastCount = activity();
    this.lastActive = clock.now();
    this.arm();
  }

  get timeout(): number {
    return this.timeoutMs;
  }

  /** A reload changed the limit: idleness so far counts against the new one. */
  setTimeout(ms: number): void {
    if (ms === this.timeoutMs) return;
    this.timeoutMs = ms;
    this.warned = false;
    this.arm();
  }

  private arm(): void {
    this.timer.clear();
    if (this.stopped || this.timeoutMs === 0) return;
    const idle = this.clock.now() - this.lastActive;
    const step = Math.min(60_000, Math.max(100, Math.floor(this.timeoutMs / 8)));
    let next = Math.min(step, this.timeoutMs - idle);
    const warnAt = this.timeoutMs - warnLead(this.timeoutMs);
    if (this.hooks.warn && !this.warned) next = Math.min(next, Math.max(0, warnAt - idle));
    this.timer.set(() => this.check(), next);
  }

  private check(): void {
    if (this.stopped) return;
    const count = this.activity();
    const now = this.clock.now();
    if (count !== this.lastCount) {
      this.lastCount = count;
      this.lastActive = now;
      this.warned = false;
    }
    const idle = now - this.lastActive;
    if (idle + 1 >= this.timeoutMs) return this.reached();
    if (this.hooks.warn && !this.warned && idle + 1 >= this.timeoutMs - warnLead(this.timeoutMs)) this.warn(this.timeoutMs - idle);
    this.arm();
  }
}

/** An absolute limit at a time on the clock (undefined = none), which may move (a reload, a new route). */
export class Deadline extends Limit {
  private at: number | undefined;
  private limitMs = 0;

  constructor(hooks: LimitHooks, clock: Clock = systemClock) {
    super(hooks, clock);
  }

  get expiresAt(): number | undefined {
    return this.at;
  }

  /** `at` on the clock; `limitMs` the limit's length (the warning comes warnLead(limitMs) before). */
  set(at: number | undefined, limitMs = 0): void {
    if (at === this.at && limitMs === this.limitMs) return;
    if (at !== this.at) this.warned = false;
    this.at = at;
    this.limitMs = limitMs;
    this.arm();
  }

  private arm(): void {
    this.timer.clear();
    if (this.stopped || this.at === undefined) return;
    const now = this.clock.now();
    const warnAt = this.at - warnLead(this.limitMs);
    const next = this.hooks.warn && !this.warned ? Math.max(now, warnAt) : this.at;
    this.timer.set(() => this.fire(), next - now);
  }

  private fire(): void {
    if (this.stopped || this.at === undefined) return;
    const now = this.clock.now();
    if (now + 1 >= this.at) return this.reached();
    if (this.hooks.warn && !this.warned) this.warn(this.at - now);
    this.arm();
  }
}

/**
 * A session's own limits, recomputed whenever its channels or their routes change: `maxSessionTime`
 * (the strictest of the routes it has a channel on, counted from the accept) and the top-level
 * `idleTimeout` while it holds no channel at all (OpenSSH's UnusedConnectionTimeout). Owns two
 * timers, `deadline` and `unused`; stop() clears both and nothing re-arms them after.
 */
export class SessionLimits {
  private readonly deadline: Deadline;
  private by: { readonly route: string; readonly ms: number } | undefined;
  private unused: { readonly timer: NodeJS.Timeout; readonly ms: number } | undefined;
  private stopped = false;

  constructor(
    /** performance.now() at accept. */
    private readonly startedAt: number,
    private readonly hooks: {
      /** maxSessionTime is `leftMs` away (`limitMs`). */
      timeWarning(leftMs: number, limitMs: number): void;
      timeLimit(route: string, limitMs: number): void;
      unused(idleMs: number): void;
    },
  ) {
    this.deadline = new Deadline({
      warn: (left) => this.hooks.timeWarning(left, this.by?.ms ?? 0),
      expire: () => this.hooks.timeLimit(this.by?.route ?? '?', this.by?.ms ?? 0),
    });
  }

  update(routes: readonly { readonly name: string; readonly maxSessionTimeMs: number }[], channelsHeld: number, idleTimeoutMs: number): void {
    if (this.stopped) return;
    let by: { route: string; ms: number } | undefined;
    for (const r of routes) if (r.maxSessionTimeMs > 0 && (!by || r.maxSessionTimeMs < by.ms)) by = { route: r.name, ms: r.maxSessionTimeMs };
    this.by = by;
    this.deadline.set(by ? this.startedAt + by.ms : undefined, by?.ms ?? 0);
    const idleMs = channelsHeld === 0 ? idleTimeoutMs : 0;
    if (this.unused?.ms === idleMs) return;
    clearTimeout(this.unused?.timer);
    this.unused = idleMs > 0 ? { timer: setTimeout(() => this.hooks.unused(idleMs), idleMs), ms: idleMs } : undefined;
  }

  stop(): void {
    this.stopped = true;
    this.deadline.stop();
    clearTimeout(this.unused?.timer);
    this.unused = undefined;
  }
}
