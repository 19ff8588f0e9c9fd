/**
 * Every event holdfast reports, declared once with its level, meaning and fields. Code emits typed
 * events; the logger is one subscriber (one line per event, the event name as `event`); metrics will
 * be another. docs/observability.md's event table is generated from EVENTS (`npm run docs`).
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
/** A keepalive probe's leg: the route whose policy it runs ("(none)": the top-level default). */
type KeepaliveLeg = { session?: string; leg: 'client' | 'upstream'; route: string; upstream?: string; dst?: string };
/** What a reload did to the live sessions of one worker (src/server.ts). */
export interface ReapplyCounts {
  sessions: number;
  legsReplanned: number;
  sessionsRevoked: number;
  channelsRevoked: number;
}
/** A worker as the primary names it: cluster id, process id, generation (1 at start, +1 per upgrade). */
type WorkerId = { worker: number; pid: number | undefined; generation: number };

interface EventSpec<F = unknown> {
  readonly level: Level;
  readonly meaning: string;
  /** Phantom: the event's fields, for the types only. */
  readonly fields?: F;
}

function ev<F>(level: Level, meaning: string): EventSpec<F> {
  return { level, meaning };
}

/** Every event: its fields (the type argument), its level and what it means. */
export const EVENTS = {
  started: ev<{ version: string; pid: number; config: string; listen: string[]; hostKeys: readonly string[]; authorizedKeys: string; routes: string[]; nativeCrypto: boolean; kex: string[]; mlkem: string | null; tcpKeepalive: boolean; maxSessions: number | null; fdLimit: number | null }>('info', 'listening, with the config, host keys, routes, native crypto, the key exchanges offered (first: post-quantum, with where ML-KEM comes from: `node:crypto` or `@noble/post-quantum`; null: not offered) and TCP keepalive support, and the session cap planned from the file descriptor limit (null: none)'),
  listening: ev<{ address: string; port: number }>('info', 'one listener bound'),
  'listen-failed': ev<{ error: string }>('error', 'a listener could not bind (exit 1; says what to do)'),
  'listener-error': ev<{ error: string }>('error', 'a bound listener failed'),
  'embedded-default': ev<{ why: string; listen: unknown; hostKeys: readonly string[]; authorizedKeys: string; routes: string[] }>('info', 'no config file: the embedded default config is in use'),
  'host-key-failed': ev<{ error: string }>('error', 'a missing host key cannot be created (its folder is not writable by the service user): exit 73 with what to do'),
  'host-key-created': ev<{ file: string; type: string }>('info', 'a missing host key was created (mode 0600)'),
  'config-warning': ev<{ warning: string }>('warn', 'the config loads but something in it is risky (the same text `check` prints)'),
  'native-crypto-missing': ev<Why & { fix: string }>('warn', "ssh2's native crypto binding is not built (AES-GCM ~7x slower)"),
  'tcp-keepalive-degraded': ev<Why & { effect: string; fix: string }>('warn', 'per-socket TCP keepalive options cannot be set; Node defaults apply'),
  'authorized-keys-line-skipped': ev<Why & { file: string; line: number }>('warn', 'an authorized_keys line holdfast cannot use (once per edit of the file)'),
  signal: ev<{ signal: string }>('info', 'SIGTERM/SIGINT received: stopping'),
  'parent-gone': ev<{ parent: string; effect: string }>('info', 'started by npm (npx holdfast serve, npm start), whose shell ended (npm passes a signal to its shell, not to holdfast): stopping as on SIGTERM'),
  reloaded: ev<{ config: string; restartNeededFor?: string[] } & ReapplyCounts>(
    'info',
    'SIGHUP: the config was re-read and applied to the live sessions too: `sessions` re-checked, `legsReplanned` (legs whose keepalive changed), `sessionsRevoked` and `channelsRevoked` (access taken away); and what only a restart changes',
  ),
  'reload-failed': ev<{ why?: string; problems?: string[]; error?: string }>('error', 'SIGHUP: the new config has errors; the previous one stays'),
  'shutdown-begin': ev<{ sessions: number; timeoutMs: number }>('info', 'stopping: listeners closed, sessions told'),
  'shutdown-forced': ev<{ signal: string }>('warn', 'a second signal: exiting at once'),
  'shutdown-complete': ev<{ leftover: number }>('info', 'every session is gone (or the bound passed)'),
  'worker-ipc-error': ev<{ worker: number; error: string }>('warn', 'the primary: a message to a worker failed (its IPC channel closed: it was exiting); the worker is not waited for'),
  'worker-started': ev<WorkerId & { version: string }>('info', 'the primary: a worker serves (its version is the code it loaded from disk)'),
  'primary-gone': ev<{ sessions: number; ids: string[] }>('error', "a worker: its primary died without a shutdown (the IPC channel closed); Node's cluster module ends the worker at once, and with it these sessions"),
  'worker-exit': ev<WorkerId & { code: number | null; signal: string | null }>('info', 'the primary: a worker ended as asked (drained after an upgrade, or shut down)'),
  'start-failed': ev<Why>('error', 'the first worker did not report that it serves within workerStartTimeout: killed, holdfast exits 70'),
  'worker-lost': ev<WorkerId & { code: number | null; signal: string | null; replaceInMs: number }>('error', 'the primary: a worker died unasked; a new one replaces it (after 5 s when it keeps dying)'),
  'upgrade-begin': ev<{ from: number; to: number; workers: number }>('info', 'SIGUSR2: a new generation of workers is starting from the code on disk'),
  'upgrade-complete': ev<{ generation: number; version: string; workers: number; draining: number; drainTimeoutMs: number }>('info', 'the new generation serves; the old one drains (no new connections; its sessions carry on)'),
  'upgrade-ignored': ev<Why>('warn', 'SIGUSR2 while the first generation is starting, another upgrade is under way or holdfast is stopping: nothing is done (send it again once the log says the generation serves)'),
  'upgrade-failed': ev<Why & { problems?: string[] }>('error', 'the new generation could not start (or its config has errors): the running one stays'),
  'admin-listening': ev<{ address: string; port: number }>('info', 'the admin listener (/metrics, /healthz, /sessions) is bound (in the main process)'),
  'primary-reloaded': ev<{ config: string; admin: 'unchanged' | 'opened' | 'reopened' | 'closed'; workersAtNextUpgrade?: number }>(
    'info',
    'SIGHUP, in the main process: the admin listener follows the file (`reopened`: a new address or token; `closed`: `admin:` removed), so do shutdownTimeout and workerStartTimeout; a changed `workers` applies at the next SIGUSR2 (`workersAtNextUpgrade`)',
  ),
  'notify-failed': ev<Why & { fix: string }>('warn', "a readiness message for systemd (Type=notify) could not be sent; once per process"),
  'admin-session-close': ev<{ session: string; why: string; found: boolean; src: string }>('warn', 'the admin side asked to end a session (`holdfast sessions --close`): who asked (src), why, and whether a worker held it; that session then closes with reason `admin-closed`'),
  'admin-failed': ev<{ error: string; effect: string }>('error', 'the admin listener could not bind or failed; SSH is served as usual'),
  'drain-begin': ev<{ sessions: number; timeoutMs: number }>('info', 'a worker of an old generation stopped accepting; its sessions carry on until they end or drainTimeout'),
  'startup-refused': ev<Why & { src: string; pending: number; notLogged?: number }>('warn', 'a connection refused by maxStartups / perSourceMaxStartups (at most one line per 5 s, with `notLogged`)'),
  'session-refused': ev<Why & { src: string; sessions: number; fix: string; notLogged?: number }>('warn', 'a connection closed at once: this worker serves maxSessions already, or has no file descriptor to spare (at most one line per 5 s)'),
  'fd-limit-low': ev<Why & { limit: number; maxSessions: number; supports: number; fix: string }>('warn', 'at start: maxSessions is above what the file descriptor limit (RLIMIT_NOFILE) supports; holdfast refuses past the limit instead'),
  'fd-exhausted': ev<Why & { sessions: number; fix: string; notLogged?: number }>('error', 'out of file descriptors: a connection could not be accepted (at most one line per 5 s)'),
  'proxy-refused': ev<Why & { src: string; cause: string; notLogged?: number }>('warn', 'a connection on a PROXY listener closed before any SSH byte: not from a trusted balancer, or no valid PROXY header in time (`src` is the balancer; at most one line per 5 s)'),
  'proxy-no-client': ev<{ src: string; what: string }>('debug', "a connection on a PROXY listener that carried no client: a v2 LOCAL header, or none before it closed (a balancer's health check)"),
  'proxy-address-unknown': ev<Why & { src: string; fix: string; notLogged?: number }>('warn', "a PROXY header without the client's address (v1 UNKNOWN, v2 UNSPEC): the balancer's address stands in (at most one line per 5 s)"),
  'session-start': ev<{ session: string; src: string; via?: string }>('debug', 'a connection was accepted (`via`: the load balancer that sent its PROXY header)'),
  'session-close': ev<Who & { via?: string; authenticated: boolean; reason: CloseReason; detail?: string; kex: string | null; authFailures: number; linesSuppressed?: number; channelLinesSuppressed?: number; channels: number; dsts: string[]; gateway?: string; bytesUp: number; bytesDown: number; durationMs: number; clientKeepalive?: LogFields; }>('info', 'one summary per connection: user, src (and `via`, the load balancer, on a PROXY listener), the key exchange (`kex`; null before one completed), destinations, bytes each way, duration, reason, client-leg probes and RTTs'),
  'auth-accepted': ev<Who & { method: string; target?: string; keyType: string; fingerprint: string; keyFile: string; keyLine: number; certificate?: LogFields; kex: string | null }>('info', 'a public key logged in (file and line of the key, the key exchange the connection negotiated); a certificate: its key ID, serial, principal, CA fingerprint and what trusted the CA'),
  'login-refused': ev<Who & Why & { connections: number }>('warn', 'a key that authenticated, refused: the user holds `maxConnectionsPerUser` connections already'),
  'auth-failed': ev<Who & Why & { method: string; target?: string; keyType?: string; fingerprint?: string; failures: number; rule?: string; certificate?: LogFields; kex?: string | null }>('warn', 'one failed authentication attempt, with why (and `rule` for certificates and revoked keys)'),
  'host-certificate': ev<{ file: string; detail: string }>('info', 'a host certificate presented with the host key it certifies'),
  'forward-refused': ev<Who & Why & { kind: string; bind?: string }>('warn', '`ssh -R` or remote streamlocal forwarding refused (holdfast listens for no user)'),
  'session-channel-refused': ev<Who & { why?: string }>('info', 'a shell/command asked of holdfast itself: the user is told to use -J'),
  'channel-refused': ev<Who & Why & { dst?: string; kind?: string; code: string }>('warn', 'a channel refused before any connection: no route, invalid destination, key options, limits'),
  'channel-connect-failed': ev<Who & Why & { dst: string; addr?: string; route?: string; upstream?: string; via?: string; code: string }>('warn', 'a route allowed the channel but the upstream leg could not be had'),
  'resume-open': ev<Who & { resumable: string; dst: string; addr: string; route: string; detachTimeoutMs: number; bufferBytes: number }>('info', 'a resumable session (`holdfast connect`) opened its target connection; `resumable` names it in the lines that follow (never its secret)'),
  'session-detached': ev<{ resumable: string; user: string; dst: string; src: string; why: string; heldBytes: number; detachTimeoutMs: number }>('info', "a resumable session's transport died: the target connection stays, read into the buffer, for `resume.detachTimeout`"),
  'session-resumed': ev<Who & { resumable: string; dst: string; previousSrc: string; gapMs: number; replayedDown: number; replayedUp: number; resumes: number }>('info', 'a resumable session got a new transport: the gap, the bytes sent again each way, the old and the new client address'),
  'resume-refused': ev<Who & Why & { cause: 'unknown' | 'other-user' | 'other-source' | 'bad-hello' | 'bad-offset' | 'detached-limit' }>('warn', 'a resume (or a resumable open) was refused: `cause` says which check failed; the helper is told, and gives up'),
  'resume-close': ev<{ resumable: string; user: string; dst: string; reason: CloseReason; detail?: string; bytesUp: number; bytesDown: number; durationMs: number; resumes: number }>('info', 'a resumable session ended (its target connection closed), with its bytes, duration and resumes'),
  'channel-open': ev<Who & { dst: string; addr?: string; route: Opt<string>; channel: number; kind?: string; command?: string; connectMs?: number; clientKeepalive: Opt<string>; upstreamKeepalive: Opt<LogFields>; }>('info', "a channel is relaying, with the client leg's policy and the upstream socket's keepalive options as read back"),
  'channel-close': ev<Who & { dst: Opt<string>; addr?: string; route: Opt<string>; channel: number; kind?: string; reason: CloseReason; error?: string; detail?: string; bytesUp: number; bytesDown: number; durationMs: number; windowMiB?: number; }>('info', 'a channel ended: reason, bytes, duration, `windowMiB` (largest receive window granted)'),
  'access-revoked': ev<Who & Why & { dst?: string; channel?: number; route?: string }>('warn', 'a reload took access away from a live session (its key) or channel (its route): what changed; it closes with reason `access-revoked`'),
  'leg-replanned': ev<{ session: string; leg: 'client' | 'upstream'; layer: 'ssh' | 'tcp'; policy: string; channel?: number; dst?: string; route?: string; routes?: string[]; tcp?: LogFields }>(
    'info',
    "a reload changed a live leg's keepalive: the new policy, and for a raw TCP leg the socket options as read back",
  ),
  'limit-warning': ev<Who & { limit: 'idle-timeout' | 'session-time-limit'; inMs: number; channel?: number }>('info', 'gateway mode: the user was told on stderr that idleTimeout or maxSessionTime is near'),
  'gateway-request-refused': ev<Who & { dst: string; addr: Opt<string>; route: Opt<string>; channel: number; what: string }>('warn', 'a pty, agent or X11 request refused in a gateway session'),
  'keepalive-probe': ev<KeepaliveLeg & { outstanding: number; routes?: string[] }>('debug', 'a keepalive probe went out on a client, bastion or gateway leg'),
  'keepalive-reply': ev<KeepaliveLeg & { rttMs: number }>('debug', "a keepalive probe's reply came back, with its round-trip time"),
  'client-keepalive-timeout': ev<Who & TimeoutReport & { route: string; routes: string[] }>('warn', 'the client leg is dead: policy, probes sent/answered, last RTT, idle time; `route` is the one whose policy it ran'),
  'upstream-keepalive-timeout': ev<TimeoutReport & Partial<Who> & { dst?: Opt<string>; addr?: Opt<string>; route?: string; upstream?: string; policy?: string; channels?: number }>('warn', 'an upstream leg is dead (TCP or SSH layer): the same figures'),
  'upstream-open': ev<{ upstream: string; hops: string[]; kex: (string | null)[] }>('info', 'a pooled bastion connection was opened, with the key exchange each hop negotiated'),
  'upstream-close': ev<{ upstream: string; reason: CloseReason; detail?: string; channels: number; durationMs: number }>('info', 'a pooled bastion connection closed, with its reason'),
  'upstream-host-key-unknown': ev<UpstreamKey & Why>('warn', "a bastion's or target's host key is not known (refused under strict)"),
  'upstream-host-key-accepted': ev<UpstreamKey & { recordedIn: string }>('warn', 'a new host key recorded under accept-new'),
  'upstream-host-key-changed': ev<UpstreamKey & Why & { verdict: string; knownAt: string }>('error', 'a host key CHANGED or revoked: refused'),
  'gateway-open': ev<Who & { dst: string; addr: string; route: string; upstreamUser: string; auth: 'identity' | 'agent'; kex: string | null; connectMs: number; upstreamKeepalive: LogFields }>('info', "gateway mode: holdfast's SSH leg to the target is up, with the key exchange it negotiated"),
  'gateway-close': ev<Who & { dst: string; route: Opt<string>; reason: CloseReason; durationMs: number; upstreamKeepalive?: LogFields }>('info', "gateway mode: the leg to the target closed, with the leg's probes and RTTs"),
  'gateway-refused': ev<Who & Why & { dst: string; code: string }>('warn', 'gateway mode: no gateway route allows the target'),
  'gateway-connect-failed': ev<Who & Why & { dst: string; addr?: string; route: string; code: string }>('warn', 'gateway mode: the target could not be resolved, reached or logged in to'),
} as const;

export type EventName = keyof typeof EVENTS;
export type EventMap = { [K in EventName]: (typeof EVENTS)[K] extends EventSpec<infer F> ? F : never };

interface UpstreamKey {
  upstream: string;
  role: 'bastion' | 'target';
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}


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
    const level = EVENTS[name].level;
    const f = fields as LogFields | (() => LogFields);
    if (level === 'debug') log.debug(name, f);
    else log[level](name, typeof f === 'function' ? f() : f);
  };
}

export const EVENT_TABLE_START = '<!-- event-table:start (generated by `npm run docs` from src/events.ts) -->';
export const EVENT_TABLE_END = '<!-- event-table:end -->';

export function eventTable(): string {
  const rows = ['| event | level | meaning |', '|---|---|---|'];
  for (const [name, spec] of Object.entries(EVENTS) as Array<[EventName, EventSpec]>) rows.push(`| \`${name}\` | ${spec.level} | ${spec.meaning.replace(/\|/g, '\\|')} |`);
  return rows.join('\n');
}
