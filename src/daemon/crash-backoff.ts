/**
 * Replacing a worker that died unasked: at once, unless it keeps dying while others still serve.
 */

/** Crashes within this window make the next replacement wait REPLACE_BACKOFF_MS. */
const CRASH_WINDOW_MS = 10_000;
const CRASHES_BEFORE_BACKOFF = 3;
const REPLACE_BACKOFF_MS = 5_000;

/**
 * How long to wait before replacing a worker that crashed: at once, unless it crashed more than
 * CRASHES_BEFORE_BACKOFF times within CRASH_WINDOW_MS while other workers still serve. With none
 * left serving there is no backoff: a wait would be a window in which nobody is served at all.
 */
export function replaceDelayMs(recentCrashes: number, othersServing: number): number {
  return recentCrashes > CRASHES_BEFORE_BACKOFF && othersServing > 0 ? REPLACE_BACKOFF_MS : 0;
}

/** The crashes of the last CRASH_WINDOW_MS. */
export class CrashLog {
  private readonly at: number[] = [];

  /** A crash now: how long its replacement waits. */
  crashed(othersServing: number, now = Date.now()): number {
    this.at.push(now);
    while (this.at.length && this.at[0]! < now - CRASH_WINDOW_MS) this.at.shift();
    return replaceDelayMs(this.at.length, othersServing);
  }
}
