/**
 * The worker's Prometheus metrics (prom-client), one more subscriber of the events (src/events.ts):
 * counters and histograms move when an event says so; what is "now" (sessions and channels open,
 * bytes of live channels) is read from the sessions at scrape time, so the data path does no metric
 * work at all. The primary aggregates every worker's registry (src/daemon/admin.ts).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventName, Events } from '../events.js';
import { VERSION } from '../version.js';
import { EVENT_LOOP_PRECISION_MS, METRICS, NO_ROUTE, type MetricName, type MetricSpec } from './declarations.js';

/** What a scrape reads of the live sessions. */
export interface LiveView {
  /**
   * Calls `session` once per live session (mode undefined: not authenticated yet) and `channel` once
   * per channel of an authenticated one. Callbacks, not iterators: at 5,000 sessions a scrape's walk
   * through generators cost ~90 ms.
   */
  visit(session: (mode: 'jump' | 'gateway' | undefined) => void, channel: (route: string | undefined, bytesUp: number, bytesDown: number) => void): void;
  /** Resumable sessions (holdfast connect) by state. */
  resumables(): { attached: number; detached: number };
}

/** Method names a client can send are free text: only these are labels, the rest are "other". */
const METHODS = new Set(['none', 'publickey', 'password', 'keyboard-interactive', 'hostbased']);

type Any = Counter<string> | Gauge<string> | Histogram<string>;

interface Snapshot {
  readonly at: number;
  readonly modes: { jump: number; gateway: number };
  readonly channels: Map<string, number>;
  readonly bytes: Map<string, { up: number; down: number }>;
}

/** A walk of the sessions this young serves the rest of the same scrape. */
const SNAPSHOT_MS = 20;

/** The events a metric moves on (the rest are not even looked at). */
const COUNTED = new Set<EventName>([
  'session-resumed',
  'resume-refused',
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
  'proxy-refused',
]);

export class Metrics {
  readonly registry = new Registry();
  private readonly m = {} as Record<MetricName, Any>;
  /** Bytes of closed channels, per route and direction; live channels are added at scrape time. */
  private readonly closedBytes = new Map<string, { up: number; down: number }>();
  private last: Snapshot | undefined;

  constructor(events: Events, live: LiveView, worker?: number) {
    const scrape = this.scrapeFns(live);
    for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
      if (spec.scope === 'primary') continue;
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
      if (spec.type === 'counter') for (const labels of spec.initial ?? []) (this.m[name] as Counter<string>).inc(labels, 0);
    }
    // The process itself (fds against their limit, RSS, heap, event-loop lag, GC), one series per worker.
    if (worker !== undefined) {
      collectDefaultMetrics({ register: this.registry, labels: { worker: String(worker) }, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
      // Gauges named like counters (promtool check metrics refuses them); nodejs_active_* by type stay.
      for (const n of ['nodejs_active_resources_total', 'nodejs_active_handles_total', 'nodejs_active_requests_total']) this.registry.removeSingleMetric(n);
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

  /**
   * One walk of the live sessions per scrape: the three metrics that read them collect one after the
   * other, so a walk younger than SNAPSHOT_MS is reused.
   */
  private snapshot(live: LiveView): Snapshot {
    const now = performance.now();
    if (this.last && now - this.last.at < SNAPSHOT_MS) return this.last;
    const snap: Snapshot = { at: now, modes: { jump: 0, gateway: 0 }, channels: new Map(), bytes: new Map() };
    for (const [route, b] of this.closedBytes) snap.bytes.set(route, { ...b });
    live.visit(
      (mode) => {
        if (mode) snap.modes[mode]++;
      },
      (name, up, down) => {
        const route = name ?? NO_ROUTE;
        snap.channels.set(route, (snap.channels.get(route) ?? 0) + 1);
        let t = snap.bytes.get(route);
        if (!t) snap.bytes.set(route, (t = { up: 0, down: 0 }));
        t.up += up;
        t.down += down;
      },
    );
    this.last = snap;
    return snap;
  }

  /** What the gauges and the byte counter read from the sessions when Prometheus scrapes. */
  private scrapeFns(live: LiveView): Partial<Record<MetricName, (metric: Any) => void>> {
    return {
      holdfast_sessions_active: (g) => {
        const gauge = g as Gauge<string>;
        gauge.reset();
        for (const [mode, n] of Object.entries(this.snapshot(live).modes)) gauge.set({ mode }, n);
      },
      holdfast_channels_active: (g) => {
        const gauge = g as Gauge<string>;
        gauge.reset();
        for (const [route, n] of this.snapshot(live).channels) gauge.set({ route }, n);
      },
      holdfast_resumable_sessions: (g) => {
        const gauge = g as Gauge<string>;
        for (const [state, n] of Object.entries(live.resumables())) gauge.set({ state }, n);
      },
      holdfast_bytes_total: (c) => {
        // Closed channels' totals plus the live channels' counters now: monotonic, since a channel's
        // final count (channel-close) is at least what it showed while live.
        const counter = c as Counter<string>;
        counter.reset();
        for (const [route, t] of this.snapshot(live).bytes) {
          counter.inc({ route, direction: 'up' }, t.up);
          counter.inc({ route, direction: 'down' }, t.down);
        }
      },
    };
  }

  private on(name: EventName, e: Record<string, unknown>): void {
    const route = typeof e.route === 'string' ? e.route : NO_ROUTE;
    switch (name) {
      case 'session-resumed':
        this.counter('holdfast_resumes_total').inc({ result: 'resumed' });
        return this.histogram('holdfast_resume_gap_seconds').observe({}, Number(e.gapMs) / 1000);
      case 'resume-refused':
        return this.counter('holdfast_resumes_total').inc({ result: 'refused' });
      case 'auth-accepted':
        this.counter('holdfast_auth_attempts_total').inc({ method: method(e.method), result: 'accepted' });
        this.counter('holdfast_sessions_total').inc({ mode: e.target ? 'gateway' : 'jump' });
        this.counter('holdfast_session_kex_total').inc({ kex: typeof e.kex === 'string' ? e.kex : NO_ROUTE });
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
      case 'proxy-refused':
        return this.counter('holdfast_proxy_refused_total').inc({ cause: String(e.cause) });
      default:
        return;
    }
  }
}

function method(m: unknown): string {
  return typeof m === 'string' && METHODS.has(m) ? m : 'other';
}
