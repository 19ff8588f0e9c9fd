/**
 * Every Prometheus metric holdfast exports, declared once: type, help, labels. The collector
 * (src/metrics/collector.ts) creates them from here and docs/observability.md's metric table is generated from
 * here (`npm run docs`; test/unit/docs.test.ts fails when they differ).
 *
 * Labels are only `route`, `leg` (client | upstream), `layer` (ssh | tcp), `reason`, `result`,
 * `mode` (jump | gateway), `method`, `direction` (up | down), `state` (attached | detached), `kex` (an algorithm name holdfast offers), the build's `version`/`node`, and `worker` (the worker id, on the process metrics):
 * never a user, an address, a destination or a session id (cardinality, and privacy). A value that
 * is not a route name is `(none)`.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: readonly number[];
  /** How the primary combines the workers' values (prom-client aggregators); default sum. */
  readonly aggregator?: 'sum' | 'max';
  /** Counted by the primary itself (reloads, upgrades, worker restarts), not by each worker. */
  readonly scope?: 'primary';
  /** Label values that exist from the start: their series read 0 before the first event. */
  readonly initial?: ReadonlyArray<Record<string, string>>;
}

/** Every combination of the given label values. */
function every(values: Record<string, readonly string[]>): Array<Record<string, string>> {
  let out: Array<Record<string, string>> = [{}];
  for (const [label, vs] of Object.entries(values)) out = out.flatMap((o) => vs.map((v) => ({ ...o, [label]: v })));
  return out;
}

/** Round-trip times from ~1 ms (a LAN) to 10 s (a leg about to be declared dead). */
const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** TCP connect or SSH login to a bastion or target. */
const CONNECT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A resume's gap: a reconnect (under a second) to a laptop lid closed for a meeting. */
const GAP_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export const NO_ROUTE = '(none)';

export const METRICS = {
  holdfast_build_info: { type: 'gauge', help: 'Always 1; the holdfast version and the Node.js version each worker runs.', labels: ['version', 'node'], aggregator: 'max' },
  holdfast_sessions_active: { type: 'gauge', help: 'Authenticated client connections open now, by mode (jump: ssh -J; gateway: user+target logins).', labels: ['mode'] },
  holdfast_sessions_total: { type: 'counter', help: 'Client connections that authenticated, by mode.', labels: ['mode'], initial: every({ mode: ['jump', 'gateway'] }) },
  holdfast_session_kex_total: { type: 'counter', help: 'Client connections that authenticated, by the key exchange they negotiated: mlkem768x25519-sha256 is post-quantum, the rest are classical (clients to upgrade).', labels: ['kex'] },
  holdfast_resumable_sessions: { type: 'gauge', help: 'Resumable sessions (holdfast connect) now, by state: attached (a transport carries them) or detached (waiting for the helper, up to resume.detachTimeout).', labels: ['state'] },
  holdfast_resumes_total: { type: 'counter', help: 'Resume attempts by result: resumed, or refused (see resume-refused lines for the cause).', labels: ['result'], initial: every({ result: ['resumed', 'refused'] }) },
  holdfast_resume_gap_seconds: { type: 'histogram', help: 'How long resumed sessions were detached (from the transport loss holdfast saw to the resume).', labels: [], buckets: GAP_BUCKETS },
  holdfast_session_closes_total: { type: 'counter', help: 'Client connections closed (authenticated or not), by close reason.', labels: ['reason'] },
  holdfast_channels_active: { type: 'gauge', help: 'Channels relaying now, by the route they run under.', labels: ['route'] },
  holdfast_channels_opened_total: { type: 'counter', help: 'Channel open requests by result: opened, refused (no route, key options, limits; route "(none)"), failed (the upstream leg could not be had).', labels: ['route', 'result'] },
  holdfast_channel_closes_total: { type: 'counter', help: 'Channels closed, by route and close reason.', labels: ['route', 'reason'] },
  holdfast_keepalive_probes_sent_total: { type: 'counter', help: 'keepalive@openssh.com probes sent, by leg and the route whose policy the leg runs.', labels: ['route', 'leg'] },
  holdfast_keepalive_probes_answered_total: { type: 'counter', help: 'Probes answered (success or failure reply), by leg and route.', labels: ['route', 'leg'] },
  holdfast_keepalive_rtt_seconds: { type: 'histogram', help: 'Round-trip time of answered keepalive probes, by leg and route.', labels: ['route', 'leg'], buckets: RTT_BUCKETS },
  holdfast_keepalive_timeouts_total: { type: 'counter', help: 'Legs declared dead by keepalive (SSH probes unanswered, or the kernel\'s TCP keepalive), by route, leg and layer.', labels: ['route', 'leg', 'layer'] },
  holdfast_bytes_total: { type: 'counter', help: 'Channel payload bytes relayed, by route and direction (up: client to target); live channels included, read at scrape time.', labels: ['route', 'direction'] },
  holdfast_auth_attempts_total: { type: 'counter', help: 'Authentication attempts by method and result (accepted, failed).', labels: ['method', 'result'], initial: every({ method: ['publickey'], result: ['accepted', 'failed'] }) },
  holdfast_upstream_connect_seconds: { type: 'histogram', help: 'Time to get an upstream leg: TCP connect, a channel on a bastion connection (dialled if needed), or a gateway login.', labels: ['route'], buckets: CONNECT_BUCKETS },
  holdfast_startups_refused_total: { type: 'counter', help: 'Connections refused before any byte by maxStartups or perSourceMaxStartups.', labels: [] },
  holdfast_proxy_refused_total: { type: 'counter', help: 'Connections on a PROXY listener closed before any SSH byte, by cause: untrusted (not from a trusted balancer), invalid (no valid PROXY header), timeout, closed (the peer left mid-header).', labels: ['cause'], initial: every({ cause: ['untrusted', 'invalid', 'timeout', 'closed'] }) },
  holdfast_reloads_total: { type: 'counter', help: 'SIGHUP reloads, counted by the main process: applied, or failed (the config had errors; every process kept the one it had).', labels: ['result'], scope: 'primary', initial: every({ result: ['applied', 'failed'] }) },
  holdfast_upgrades_total: { type: 'counter', help: 'Upgrades in place (SIGUSR2) by result: complete, or failed (the running generation stayed).', labels: ['result'], scope: 'primary', initial: every({ result: ['complete', 'failed'] }) },
  holdfast_worker_restarts_total: { type: 'counter', help: 'Workers that died unasked and were replaced (worker-lost lines say why).', labels: [], scope: 'primary' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;

export const METRIC_TABLE_START = '<!-- metric-table:start (generated by `npm run docs` from src/metrics/declarations.ts) -->';
export const METRIC_TABLE_END = '<!-- metric-table:end -->';

export function metricTable(): string {
  const rows = ['| metric | type | labels | meaning |', '|---|---|---|---|'];
  for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
    rows.push(`| \`${name}\` | ${spec.type} | ${spec.labels.map((l) => `\`${l}\``).join(', ') || '-'} | ${spec.help.replace(/\|/g, '\\|')} |`);
  }
  rows.push(`| \`${PROCESS_METRICS}\` | (prom-client's) | \`worker\` | Each worker's process: CPU, RSS, heap, open file descriptors and their limit (\`process_open_fds\`, \`process_max_fds\`), event-loop lag, GC pauses (prom-client's default metrics, sampled at scrape time; event loop every ${EVENT_LOOP_PRECISION_MS} ms). |`);
  return rows.join('\n');
}

export const PROCESS_METRICS = 'process_*, nodejs_*';
/** prom-client's event-loop delay histogram resolution: a timer at this period per worker. */
export const EVENT_LOOP_PRECISION_MS = 100;
