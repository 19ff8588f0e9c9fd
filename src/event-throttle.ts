/**
 * Lines an outsider can cause at any rate (refused startups, fd exhaustion, bad PROXY headers): the
 * first of each event is logged at once, then at most one line per `everyMs` carrying how many were
 * not logged (`notLogged`). Every event is still emitted (metrics count them), unlogged ones with
 * `{ log: false }`.
 */
import type { EventMap, Events } from './events.js';

export type ThrottledEvent = 'startup-refused' | 'session-refused' | 'fd-exhausted' | 'proxy-refused' | 'proxy-address-unknown';

/** At most one line per this long for events an outsider can cause at will. */
export const THROTTLE_MS = 5000;

export class EventThrottle {
  private readonly state = new Map<ThrottledEvent, { last: number; suppressed: number }>();

  constructor(
    private readonly events: Events,
    private readonly everyMs = THROTTLE_MS,
  ) {}

  emit<K extends ThrottledEvent>(event: K, fields: EventMap[K]): void {
    const t = this.state.get(event) ?? { last: 0, suppressed: 0 };
    this.state.set(event, t);
    const now = Date.now();
    if (now - t.last < this.everyMs) {
      t.suppressed++;
      this.events.emit(event, fields, { log: false });
      return;
    }
    this.events.emit(event, t.suppressed ? { ...(fields as EventMap[K] & object), notLogged: t.suppressed } : fields);
    t.last = now;
    t.suppressed = 0;
  }
}
