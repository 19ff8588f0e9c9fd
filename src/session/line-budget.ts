/**
 * How many lines of one kind a connection may log: a client can cause some lines at will (failed
 * logins, refused channels, and one line per channel it opens and closes), so past `max` they are
 * only counted, and the session's summary line says how many were not logged. Metrics still count
 * every one (the events are emitted with `log: false`).
 */
export class LineBudget {
  private lines = 0;

  constructor(readonly max: number) {}

  /** One more line: whether to log it. */
  take(): boolean {
    return ++this.lines <= this.max;
  }

  /** Lines not logged so far. */
  get suppressed(): number {
    return Math.max(0, this.lines - this.max);
  }
}
