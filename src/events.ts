/**
 * Every event holdfast reports, declared once with its level, meaning and fields. Code emits typed
 * events; the logger is one subscriber (one line per event, the event name as `event`); metrics will
 * be another. The README's event table is generated from EVENT_INFO (`npm run docs`).
 *
 * Field names are fixed across events: session (id), user, src ("ip:port"), dst ("host:port" as
 * asked), addr (address connected to), route, reason, leg, bytesUp (client -> target), bytesDown,
 * durationMs. Keys and signatures are never fields (fingerprints are).
 */
import type { Level, Logger, LogFields } from './log.js';
import type { CloseReason } from './close-reasons.js';

/** Who a line is about: the session, its (claimed or authenticated) user and the client's address. */
export interface Who {
  session: string;
  user?: string | null | undefined;
  src: string;
}
type Opt<T> = T | undefined;
/** A *-keepalive-timeout report (src/keepalive/report.ts). */
export interface TimeoutReport {
  reason: 'client-keepalive-timeout' | 'upstream-keepalive-timeout';
  leg: 'client' | 'upstream';
  layer: 'ssh' | 'tcp';
  interval: number;
  countMax: number;
  probesSent: number;
  probesAnswered: number;
  lastRttMs: number | null;
  idleMs: number;
}
type Why = { why: string };

export interface EventMap {
  started: { version: string; config: string; listen: string[]; hostKeys: readonly string[]; authorizedKeys: string; routes: string[]; nativeCrypto: boolean; tcpKeepalive: boolean };
  listening: { address: string; port: number };
  'listen-failed': { error: string };
  'listener-error': { error: string };
  'embedded-default': { why: string; listen: unknown; hostKeys: readonly string[]; authorizedKeys: string; routes: string[] };
  'host-key-created': { file: string; type: string };
  'config-warning': { warning: string };
  'native-crypto-missing': Why & { fix: string };
  'tcp-keepalive-degraded': Why & { effect: string; fix: string };
  'authorized-keys-line-skipped': Why & { file: string; line: number };
  signal: { signal: string };
  reloaded: { config: string; restartNeededFor?: string[] };
  'reload-failed': { why?: string; problems?: string[]; error?: string };
  'shutdown-begin': { sessions: number; timeoutMs: number };
  'shutdown-forced': { signal: string };
  'shutdown-complete': { leftover: number };
  'startup-refused': Why & { src: string; pending: number; notLogged?: number };
  'fd-exhausted': Why & { sessions: number; fix: string; notLogged?: number };
  'session-start': { session: string; src: string };
  'session-close': Who & {
    authenticated: boolean;
    reason: CloseReason;
    detail?: string;
    authFailures: number;
    linesSuppressed?: number;
    channels: number;
    dsts: string[];
    gateway?: string;
    bytesUp: number;
    bytesDown: number;
    durationMs: number;
    clientKeepalive?: LogFields;
  };
  'auth-accepted': Who & { method: string; target?: string; keyType: string; fingerprint: string; keyFile: string; keyLine: number };
  'auth-failed': Who & Why & { method: string; target?: string; keyType?: string; fingerprint?: string; failures: number };
  'forward-refused': Who & Why & { kind: string; bind?: string };
  'session-channel-refused': Who & { why?: string };
  'channel-refused': Who & Why & { dst?: string; kind?: string; code: string };
  'channel-connect-failed': Who & Why & { dst: string; addr?: string; route?: string; upstream?: string; via?: string; code: string };
  'channel-open': Who & {
    dst: string;
    addr?: string;
    route: Opt<string>;
    channel: number;
    kind?: string;
    command?: string;
    clientKeepalive: Opt<string>;
    upstreamKeepalive: Opt<LogFields>;
  };
  'channel-close': Who & {
    dst: Opt<string>;
    addr?: string;
    route: Opt<string>;
    channel: number;
    kind?: string;
    reason: CloseReason;
    error?: string;
    detail?: string;
    bytesUp: number;
    bytesDown: number;
    durationMs: number;
    windowMiB?: number;
  };
  'gateway-request-refused': Who & { dst: string; addr: Opt<string>; route: Opt<string>; channel: number; what: string };
  'keepalive-probe': { session: string; leg: 'client'; outstanding: number; routes: string[] };
  'client-keepalive-timeout': Who & TimeoutReport & { routes: string[] };
  'upstream-keepalive-timeout': TimeoutReport & Partial<Who> & { dst?: Opt<string>; addr?: Opt<string>; route?: string; upstream?: string; policy?: string; channels?: number };
  'upstream-open': { upstream: string; hops: string[] };
  'upstream-close': { upstream: string; reason: CloseReason; detail?: string; channels: number; durationMs: number };
  'upstream-host-key-unknown': UpstreamKey & Why;
  'upstream-host-key-accepted': UpstreamKey & { recordedIn: string };
  'upstream-host-key-changed': UpstreamKey & Why & { verdict: string; knownAt: string };
  'gateway-open': Who & { dst: string; addr: string; route: string; upstreamUser: string; auth: 'identity' | 'agent'; upstreamKeepalive: LogFields };
  'gateway-close': Who & { dst: string; route: Opt<string>; reason: CloseReason; durationMs: number; upstreamKeepalive?: LogFields };
  'gateway-refused': Who & Why & { dst: string; code: string };
  'gateway-connect-failed': Who & Why & { dst: string; addr?: string; route: string; code: string };
}

interface UpstreamKey {
  upstream: string;
  role: 'bastion' | 'target';
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}

export type EventName = keyof EventMap;

export interface EventSpec {
  readonly level: Level;
  readonly meaning: string;
}

/** Level and meaning of each event; the mapped type makes a missing or extra entry a compile error. */
export const EVENT_INFO: { readonly [K in EventName]: EventSpec } = {
  started: { level: 'info', meaning: 'listening, with the config, host keys, routes, native crypto and TCP keepalive support' },
  listening: { level: 'info', meaning: 'one listener bound' },
  'listen-failed': { level: 'error', meaning: 'a listener could not bind (exit 1; says what to do)' },
  'listener-error': { level: 'error', meaning: 'a bound listener failed' },
  'embedded-default': { level: 'info', meaning: 'no config file: the embedded default config is in use' },
  'host-key-created': { level: 'info', meaning: 'a missing host key was created (mode 0600)' },
  'config-warning': { level: 'warn', meaning: 'the config loads but something in it is risky (the same text `check` prints)' },
  'native-crypto-missing': { level: 'warn', meaning: "ssh2's native crypto binding is not built (AES-GCM ~7x slower)" },
  'tcp-keepalive-degraded': { level: 'warn', meaning: 'per-socket TCP keepalive options cannot be set; Node defaults apply' },
  'authorized-keys-line-skipped': { level: 'warn', meaning: 'an authorized_keys line holdfast cannot use (once per edit of the file)' },
  signal: { level: 'info', meaning: 'SIGTERM/SIGINT received: stopping' },
  reloaded: { level: 'info', meaning: 'SIGHUP: the config was re-read (and what only a restart changes)' },
  'reload-failed': { level: 'error', meaning: 'SIGHUP: the new config has errors; the previous one stays' },
  'shutdown-begin': { level: 'info', meaning: 'stopping: listeners closed, sessions told' },
  'shutdown-forced': { level: 'warn', meaning: 'a second signal: exiting at once' },
  'shutdown-complete': { level: 'info', meaning: 'every session is gone (or the bound passed)' },
  'startup-refused': { level: 'warn', meaning: 'a connection refused by maxStartups / perSourceMaxStartups (at most one line per 5 s, with `notLogged`)' },
  'fd-exhausted': { level: 'error', meaning: 'out of file descriptors: a connection could not be accepted (at most one line per 5 s)' },
  'session-start': { level: 'debug', meaning: 'a connection was accepted' },
  'session-close': { level: 'info', meaning: 'one summary per connection: user, src, destinations, bytes each way, duration, reason, client-leg probes and RTTs' },
  'auth-accepted': { level: 'info', meaning: 'a public key logged in (file and line of the key)' },
  'auth-failed': { level: 'info', meaning: 'one failed authentication attempt, with why' },
  'forward-refused': { level: 'warn', meaning: '`ssh -R` or remote streamlocal forwarding refused (holdfast listens for no user)' },
  'session-channel-refused': { level: 'info', meaning: 'a shell/command asked of holdfast itself: the user is told to use -J' },
  'channel-refused': { level: 'warn', meaning: 'a channel refused before any connection: no route, invalid destination, key options, limits' },
  'channel-connect-failed': { level: 'warn', meaning: 'a route allowed the channel but the upstream leg could not be had' },
  'channel-open': { level: 'info', meaning: "a channel is relaying, with the client leg's policy and the upstream socket's keepalive options as read back" },
  'channel-close': { level: 'info', meaning: 'a channel ended: reason, bytes, duration, `windowMiB` (largest receive window granted)' },
  'gateway-request-refused': { level: 'warn', meaning: 'a pty, agent or X11 request refused in a gateway session' },
  'keepalive-probe': { level: 'debug', meaning: 'a client-leg keepalive probe went out' },
  'client-keepalive-timeout': { level: 'warn', meaning: 'the client leg is dead: policy, probes sent/answered, last RTT, idle time' },
  'upstream-keepalive-timeout': { level: 'warn', meaning: 'an upstream leg is dead (TCP or SSH layer): the same figures' },
  'upstream-open': { level: 'info', meaning: 'a pooled bastion connection was opened' },
  'upstream-close': { level: 'info', meaning: 'a pooled bastion connection closed, with its reason' },
  'upstream-host-key-unknown': { level: 'warn', meaning: "a bastion's or target's host key is not known (refused under strict)" },
  'upstream-host-key-accepted': { level: 'warn', meaning: 'a new host key recorded under accept-new' },
  'upstream-host-key-changed': { level: 'error', meaning: 'a host key CHANGED or revoked: refused' },
  'gateway-open': { level: 'info', meaning: "gateway mode: holdfast's SSH leg to the target is up" },
  'gateway-close': { level: 'info', meaning: "gateway mode: the leg to the target closed, with the leg's probes and RTTs" },
  'gateway-refused': { level: 'warn', meaning: 'gateway mode: no gateway route allows the target' },
  'gateway-connect-failed': { level: 'warn', meaning: 'gateway mode: the target could not be resolved, reached or logged in to' },
};

type Lazy<T> = T | (() => T);

export interface EmitOptions {
  /** false: counted by subscribers that count, but not logged (a client past its line budget). */
  readonly log?: boolean;
}

export type Subscriber = <K extends EventName>(name: K, fields: Lazy<EventMap[K]>, opts: EmitOptions) => void;

export class Events {
  private readonly subscribers: Subscriber[] = [];

  subscribe(s: Subscriber): () => void {
    this.subscribers.push(s);
    return () => {
      const i = this.subscribers.indexOf(s);
      if (i >= 0) this.subscribers.splice(i, 1);
    };
  }

  /** Fields may be a function for hot debug events: called only by a subscriber that wants them. */
  emit<K extends EventName>(name: K, fields: Lazy<EventMap[K]>, opts: EmitOptions = {}): void {
    for (const s of this.subscribers) s(name, fields, opts);
  }

  /** Events with the logger subscribed: what the daemon and most tests use. */
  static loggingTo(log: Logger): Events {
    const e = new Events();
    e.subscribe(logSubscriber(log));
    return e;
  }
}

export function logSubscriber(log: Logger): Subscriber {
  return (name, fields, opts) => {
    if (opts.log === false) return;
    const level = EVENT_INFO[name].level;
    if (level === 'debug') log.debug(name, fields as LogFields | (() => LogFields));
    else log[level](name, (typeof fields === 'function' ? fields() : fields) as LogFields);
  };
}

export const EVENT_TABLE_START = '<!-- event-table:start (generated by `npm run docs` from src/events.ts) -->';
export const EVENT_TABLE_END = '<!-- event-table:end -->';

export function eventTable(): string {
  const rows = ['| event | level | meaning |', '|---|---|---|'];
  for (const [name, spec] of Object.entries(EVENT_INFO) as Array<[EventName, EventSpec]>) rows.push(`| \`${name}\` | ${spec.level} | ${spec.meaning.replace(/\|/g, '\\|')} |`);
  return rows.join('\n');
}
