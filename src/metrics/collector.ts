/**
 * The worker's Prometheus metrics (prom-client), one more subscriber of the events (src/events.ts):
 * counters and histograms move when an event says so; what is "now" (sessions and channels open,
 * bytes of live channels) is read from the sessions at scrape time, so the data path does no metric
 * work at all. The primary aggregates every worker's registry (src/daemon/admin.ts).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventName, Events } from '../events.js';
import { VERSION } from '../version.js';
import { METRICS, NO_ROUTE, type MetricName, type MetricSpec } from './declarations.js';

/** What a scrape reads of the live sessions. */
export interface LiveView {
  sessions(): Iterable<{
    /** undefined: not authenticated yet. */
    readonly mode: 'jump' | 'gateway' | undefined;
    channels(): Iterable<{ readonly route: string | undefined; readonly bytesUp: number; readonly bytesDown: number }>;
  }>;
}

/** Method names a client can send are free text: only these are labels, the rest are "other". */
const METHODS = new Set(['none', 'publickey', 'password', 'keyboard-interactive', 'hostbased']);

type Any = Counter<string> | Gauge<string> | Histogram<string>;

/** The events a metric moves on (the rest are not even looked at). */
const COUNTED = new Set<EventName>([
  'auth-accepted',
  'auth-failed',
  'session-close',
  'channel-open',
  'channel-refused',
  'channel-connect-failed',
  'channel-close',
  'gateway-open',
  'keepalive-probe',
  'keepalive-reply',
  'client-keepalive-timeout',
  'upstream-keepalive-timeout',
  'startup-refused',
]);

export class Metrics {
  readonly registry = new Registry();
  private readonly m = {} as Record<MetricName, Any>;
  /** Bytes of closed channels, per route and direction; live channels are added at scrape time. */
  private readonly closedBytes = new Map<string, { up: number; down: number }>();

  constructor(events: Events, live: LiveView) {
    const scrape = this.scrapeFns(live);
    for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
      const fn = scrape[name];
      const base = {
        name,
        help: spec.help,
        labelNames: [...spec.labels],
        registers: [this.registry],
        aggregator: spec.aggregator ?? 'sum',
        ...(fn ? { collect: () => fn(this.m[name]) } : {}),
      };
      this.m[name] =
        spec.type === 'counter'
          ? new Counter(base)
          : spec.type === 'gauge'
            ? new Gauge(base)
            : new Histogram({ ...base, buckets: [...(spec.buckets ?? [])] });
    }
    this.gauge('holdfast_build_info').set({ version: VERSION, node: process.version }, 1);
    events.subscribe((name, fields) => {
      if (!COUNTED.has(name)) return;
      const f = fields as unknown as object | (() => object);
      this.on(name, (typeof f === 'function' ? f() : f) as Record<string, unknown>);
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  private counter(n: MetricName): Counter<string> {
    return this.m[n] as Counter<string>;
  }
  private gauge(n: MetricName): Gauge<string> {
    return this.m[n] as Gauge<string>;
  }
  private histogram(n: MetricName): Histogram<string> {
    return this.m[n] as Histogram<string>;
  }

  /** What the gauges and the byte counter read from the sessions when Prometheus scrapes. */
  private scrapeFns(live: LiveView): Partial<Record<MetricName, (metric: Any) => void>> {
    return {
      holdfast_sessions_active: (g) => {
        const modes = { jump: 0, gateway: 0 };
        for (const s of live.sessions()) if (s.mode) modes[s.mode]++;
        (g as Gauge<string>).reset();
        for (const [mode, n] of Object.entries(modes)) (g as Gauge<string>).set({ mode }, n);
      },
      holdfast_channels_active: (g) => {
        const perRoute = new Map<string, number>();
        for (const s of live.sessions()) for (const c of s.channels()) perRoute.set(c.route ?? NO_ROUTE, (perRoute.get(c.route ?? NO_ROUTE) ?? 0) + 1);
        (g as Gauge<string>).reset();
        for (const [route, n] of perRoute) (g as Gauge<string>).set({ route }, n);
      },
      holdfast_bytes_total: (c) => {
        // Closed channels' totals plus the live channels' counters now: monotonic, since a channel's
        // final count (channel-close) is at least what it showed while live.
        const totals = new Map<string, { up: number; down: number }>();
        for (const [route, b] of this.closedBytes) totals.set(route, { ...b });
        for (const s of live.sessions()) {
          for (const ch of s.channels()) {
            const t = totals.get(ch.route ?? NO_ROUTE) ?? { up: 0, down: 0 };
            t.up += ch.bytesUp;
            t.down += ch.bytesDown;
            totals.set(ch.route ?? NO_ROUTE, t);
          }
        }
        const counter = c as Counter<string>;
        counter.reset();
        for (const [route, t] of totals) {
          counter.inc({ route, direction: 'up' }, t.up);
          counter.inc({ route, direction: 'down' }, t.down);
        }
      },
    };
  }

  private on(name: EventName, e: Record<string, unknown>): void {
    const route = typeof e.route === 'string' ? e.route : NO_ROUTE;
    switch (name) {
      case 'auth-accepted':
        this.counter('holdfast_auth_attempts_total').inc({ method: method(e.method), result: 'accepted' });
        this.counter('holdfast_sessions_total').inc({ mode: e.target ? 'gateway' : 'jump' });
        return;
      case 'auth-failed':
        return this.counter('holdfast_auth_attempts_total').inc({ method: method(e.method), result: 'failed' });
      case 'session-close':
        return this.counter('holdfast_session_closes_total').inc({ reason: String(e.reason) });
      case 'channel-open':
        if (typeof e.connectMs === 'number') this.histogram('holdfast_upstream_connect_seconds').observe({ route }, e.connectMs / 1000);
        return this.counter('holdfast_channels_opened_total').inc({ route, result: 'opened' });
      case 'channel-refused':
        return this.counter('holdfast_channels_opened_total').inc({ route: NO_ROUTE, result: 'refused' });
      case 'channel-connect-failed':
        return this.counter('holdfast_channels_opened_total').inc({ route, result: 'failed' });
      case 'channel-close': {
        this.counter('holdfast_channel_closes_total').inc({ route, reason: String(e.reason) });
        const b = this.closedBytes.get(route) ?? { up: 0, down: 0 };
        b.up += Number(e.bytesUp) || 0;
        b.down += Number(e.bytesDown) || 0;
        this.closedBytes.set(route, b);
        return;
      }
      case 'gateway-open':
        return this.histogram('holdfast_upstream_connect_seconds').observe({ route }, Number(e.connectMs) / 1000);
      case 'keepalive-probe':
        return this.counter('holdfast_keepalive_probes_sent_total').inc({ route, leg: String(e.leg) });
      case 'keepalive-reply':
        this.counter('holdfast_keepalive_probes_answered_total').inc({ route, leg: String(e.leg) });
        return this.histogram('holdfast_keepalive_rtt_seconds').observe({ route, leg: String(e.leg) }, Number(e.rttMs) / 1000);
      case 'client-keepalive-timeout':
      case 'upstream-keepalive-timeout':
        return this.counter('holdfast_keepalive_timeouts_total').inc({ route, leg: String(e.leg), layer: String(e.layer) });
      case 'startup-refused':
        return this.counter('holdfast_startups_refused_total').inc();
      default:
        return;
    }
  }
}

function method(m: unknown): string {
  return typeof m === 'string' && METHODS.has(m) ? m : 'other';
}
