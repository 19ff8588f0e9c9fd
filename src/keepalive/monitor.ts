/**
 * The keepalive monitor of one leg, driven by an injected clock (unit-tested in milliseconds).
 *
 * One timer, re-armed only at probe times, never per packet: `received()` just records the time, so
 * the hot path costs one clock read per chunk. The timer then looks at when the last byte came in:
 * probes go out at lastRx + k·interval (k = 1..countMax), death at lastRx + (countMax+1)·interval.
 * This is OpenSSH's bound; "anything received counts" is its rule too (serverloop.c resets
 * keep_alive_timeouts on any packet).
 */
import type { KeepalivePolicy } from './policy.js';

export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The grid a timer of `ms` is aligned to: 1/20 of the delay, between 1 and 1000 ms. */
export function timerGrain(ms: number): number {
  return Math.min(1000, Math.max(1, Math.floor(ms / 20)));
}

/**
 * Real time. Due times are rounded up to a grid shared by every monitor of the process, so probes
 * due at about the same moment go out in one turn of the event loop and their replies come back
 * together: one wake-up for many sessions instead of one each (at 5,000 idle sessions the wake-ups
 * were most of the idle CPU). A probe is late by at most 1/20 of its interval (≤ 1 s), and so is
 * the detection bound.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => {
    const now = performance.now();
    const grain = timerGrain(ms);
    return setTimeout(fn, Math.ceil(Math.ceil((now + ms) / grain) * grain - now));
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** One re-armable timer on a clock: set() replaces the pending one, clear() cancels it. */
export class ClockTimer {
  private handle: unknown;

  constructor(private readonly clock: Clock) {}

  set(fn: () => void, ms: number): void {
    this.clear();
    this.handle = this.clock.setTimer(() => {
      this.handle = undefined;
      fn();
    }, Math.max(0, ms));
  }

  clear(): void {
    if (this.handle !== undefined) this.clock.clearTimer(this.handle);
    this.handle = undefined;
  }
}

export interface MonitorStats {
  readonly probesSent: number;
  readonly probesAnswered: number;
  /** Probes sent since the last byte received. */
  readonly outstanding: number;
  readonly lastRttMs: number | null;
  /** Smoothed round-trip time (RFC 6298 weights). */
  readonly srttMs: number | null;
  readonly idleMs: number;
}

export interface MonitorHooks {
  /** Send one probe now. */
  probe(): void;
  /** The leg is dead; the monitor has stopped. */
  dead(stats: MonitorStats): void;
}

export class KeepaliveMonitor {
  private lastRx: number;
  private outstanding = 0;
  private lastProbeAt = 0;
  private readonly timer: ClockTimer;
  private stopped = false;
  private sent = 0;
  private answered = 0;
  private lastRtt: number | null = null;
  private srtt: number | null = null;

  constructor(
    private policy: KeepalivePolicy,
    private readonly clock: Clock,
    private readonly hooks: MonitorHooks,
  ) {
    this.lastRx = clock.now();
    this.timer = new ClockTimer(clock);
    this.arm();
  }

  get currentPolicy(): KeepalivePolicy {
    return this.policy;
  }

  /** Anything received on the leg: data, a reply, a window adjust, the peer's own keepalive. */
  received(): void {
    this.lastRx = this.clock.now();
    this.outstanding = 0;
  }

  /** A probe's reply arrived after `rttMs`. */
  replied(rttMs: number): void {
    this.answered++;
    this.lastRtt = rttMs;
    this.srtt = this.srtt === null ? rttMs : 0.875 * this.srtt + 0.125 * rttMs;
  }

  /** Switches policy mid-flight; the schedule is recomputed from the last byte received. */
  setPolicy(p: KeepalivePolicy): void {
    if (p.interval === this.policy.interval && p.countMax === this.policy.countMax) return;
    this.policy = p;
    this.arm();
  }

  stats(): MonitorStats {
    return {
      probesSent: this.sent,
      probesAnswered: this.answered,
      outstanding: this.outstanding,
      lastRttMs: this.lastRtt,
      srttMs: this.srtt,
      idleMs: this.clock.now() - this.lastRx,
    };
  }

  stop(): void {
    this.stopped = true;
    this.timer.clear();
  }

  private arm(): void {
    this.timer.clear();
    if (this.stopped || this.policy.interval === 0) return;
    this.timer.set(() => this.fire(), this.nextDue() - this.clock.now());
  }

  /**
   * lastRx + (outstanding+1)·interval, but never less than one interval after the last probe: after
   * a policy change, a probe sent late still gets a full interval to be answered.
   */
  private nextDue(): number {
    const byRx = this.lastRx + (this.outstanding + 1) * this.policy.interval;
    return this.outstanding > 0 ? Math.max(byRx, this.lastProbeAt + this.policy.interval) : byRx;
  }

  private fire(): void {
    if (this.stopped) return;
    // Something arrived since this timer was set: the schedule moved on.
    if (this.clock.now() + 1 < this.nextDue()) return this.arm();
    if (this.policy.countMax > 0 && this.outstanding >= this.policy.countMax) {
      this.stopped = true;
      this.hooks.dead(this.stats());
      return;
    }
    this.outstanding++;
    this.sent++;
    this.lastProbeAt = this.clock.now();
    this.hooks.probe();
    this.arm();
  }
}
