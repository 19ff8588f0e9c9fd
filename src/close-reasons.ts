/**
 * Every close reason holdfast logs, in one place: what it means and what it can end. Data, not prose:
 * the `reason` field of `session-close`, `channel-close`, `upstream-close` and `gateway-close`, and of
 * the keepalive timeout lines. docs/observability.md's reason table is generated from this table
 * (`npm run docs`; test/unit/docs.test.ts fails when they differ).
 *
 * Scopes: `session` a client connection; `channel` an `ssh -J` channel and its upstream leg;
 * `bastion` a pooled SSH connection to a `via` bastion; `gateway` gateway mode's SSH leg to the
 * target; `gateway-channel` a session channel relayed to the target; `resumable` a resumable client
 * leg (`holdfast connect`) and its target connection.
 */
export type Scope = 'session' | 'channel' | 'bastion' | 'gateway' | 'gateway-channel' | 'resumable';

interface ReasonSpec {
  readonly scopes: readonly Scope[];
  readonly meaning: string;
}

export const CLOSE_REASONS = {
  'peer-closed': { scopes: ['session', 'channel'], meaning: "the user's ssh closed the connection or the channel (a socket error such as ECONNRESET is the `detail`)" },
  'no-handshake': { scopes: ['session'], meaning: 'the connection closed before an SSH identification line arrived' },
  'login-grace': { scopes: ['session'], meaning: 'not authenticated within `loginGraceTime`' },
  'auth-failed': { scopes: ['session'], meaning: '`maxAuthTries` failed attempts, or the client gave up after failing' },
  'user-connection-limit': { scopes: ['session'], meaning: 'the user already held `maxConnectionsPerUser` logged-in connections in this worker' },
  'protocol-error': { scopes: ['session'], meaning: "the client broke the SSH protocol (ssh2's message is the `detail`)" },
  shutdown: { scopes: ['session', 'channel', 'bastion', 'gateway', 'resumable'], meaning: 'holdfast is stopping (SIGTERM); the user\'s ssh prints "the jump host is shutting down"' },
  'client-keepalive-timeout': { scopes: ['session', 'channel', 'gateway'], meaning: 'the client leg answered no keepalive for `interval × (countMax + 1)`' },
  'upstream-keepalive-timeout': { scopes: ['session', 'channel', 'bastion', 'gateway'], meaning: 'the upstream leg (TCP keepalive, or keepalive@openssh.com on an SSH leg) answered nothing for its bound' },
  'upstream-closed': { scopes: ['session', 'channel', 'bastion', 'gateway'], meaning: 'the target or bastion closed its side in order' },
  'upstream-error': { scopes: ['session', 'channel', 'bastion', 'gateway', 'resumable'], meaning: 'the upstream leg failed (reset, unreachable; the error is the `detail`)' },
  'upstream-idle': { scopes: ['channel', 'bastion'], meaning: 'a pooled bastion connection had no channel for `upstreamPool.idleTimeout`' },
  'upstream-evicted': { scopes: ['channel', 'bastion'], meaning: 'a pooled bastion connection was evicted (more than `upstreamPool.max` chains)' },
  'session-closed': { scopes: ['channel', 'gateway', 'gateway-channel'], meaning: 'the client connection ended, so everything on it did' },
  done: { scopes: ['gateway-channel', 'resumable'], meaning: "the target's command or shell ended; its exit status was relayed (resumable: both directions ended and the helper had every byte)" },
  'detach-timeout': { scopes: ['resumable'], meaning: 'a resumable leg stayed detached (no `holdfast connect` transport) for `resume.detachTimeout`: its target connection is closed' },
  'client-closed': { scopes: ['gateway-channel'], meaning: 'the user closed the session channel' },
  'target-refused': { scopes: ['gateway-channel'], meaning: 'the target refused the shell, command or subsystem (the user sees why)' },
  'upstream-gone': { scopes: ['gateway-channel'], meaning: 'the gateway leg died; the user saw one line saying why' },
  'access-revoked': {
    scopes: ['session', 'channel', 'gateway', 'gateway-channel', 'resumable'],
    meaning: "a reload (SIGHUP) took the access away: the key left authorized_keys, its expiry-time passed or its from= no longer matches (the session ends), or no route allows the channel's destination any more (that channel ends); the `detail` says what changed",
  },
  'idle-timeout': {
    scopes: ['session', 'channel', 'gateway-channel'],
    meaning: 'no channel data either way for the route\'s `idleTimeout` (keepalive traffic does not count), or a connection with no channel for the top-level `idleTimeout`',
  },
  'admin-closed': {
    scopes: ['session', 'channel', 'gateway', 'gateway-channel', 'resumable'],
    meaning: 'an operator ended the session from the admin side (`holdfast sessions --close ID`); the user\'s ssh prints it with the operator\'s reason',
  },
  'session-time-limit': { scopes: ['session', 'channel', 'gateway', 'gateway-channel'], meaning: "the connection reached the `maxSessionTime` of a route it has a channel on, however busy" },
} as const satisfies Record<string, ReasonSpec>;

export type CloseReason = keyof typeof CLOSE_REASONS;

type ReasonIn<S extends Scope> = { [K in CloseReason]: S extends (typeof CLOSE_REASONS)[K]['scopes'][number] ? K : never }[CloseReason];

export type SessionCloseReason = ReasonIn<'session'>;
export type ChannelCloseReason = ReasonIn<'channel'>;
export type BastionCloseReason = ReasonIn<'bastion'>;
export type GatewayCloseReason = ReasonIn<'gateway'>;
export type GatewayChannelCloseReason = ReasonIn<'gateway-channel'>;
export type ResumableCloseReason = ReasonIn<'resumable'>;

/** Reasons a session passes on to everything on it; any other close is "session-closed" for them. */
const PASSED_ON = ['shutdown', 'client-keepalive-timeout', 'access-revoked', 'session-time-limit', 'admin-closed'] as const;
export type ChildReason = (typeof PASSED_ON)[number] | 'session-closed';

/** What a session's close means for everything on it. */
export function childReason(reason: SessionCloseReason): ChildReason {
  return (PASSED_ON as readonly string[]).includes(reason) ? (reason as ChildReason) : 'session-closed';
}

/** The gateway leg died: the session ends with the same reason when it has one, else upstream-error. */
export function sessionReasonFor(reason: GatewayCloseReason): SessionCloseReason {
  return reason === 'upstream-keepalive-timeout' || reason === 'upstream-closed' ? reason : 'upstream-error';
}

/** The one line a user's ssh prints when holdfast hangs up on purpose ("Received disconnect from …: <text>"). */
export function disconnectText(reason: SessionCloseReason, detail: string | undefined): string {
  if (reason === 'shutdown') return 'holdfast: the jump host is shutting down; reconnect in a moment';
  if (reason === 'auth-failed') return 'holdfast: too many authentication failures';
  if (reason === 'admin-closed') return `holdfast: an administrator ended this session${detail ? `: ${detail}` : ''}`;
  return `holdfast: ${reason}${detail ? ` (${detail})` : ''}`;
}

export const REASON_TABLE_START = '<!-- reason-table:start (generated by `npm run docs` from src/close-reasons.ts) -->';
export const REASON_TABLE_END = '<!-- reason-table:end -->';

const SCOPE_NAMES: Record<Scope, string> = {
  session: 'session',
  channel: '`-J` channel',
  bastion: 'bastion',
  gateway: 'gateway leg',
  'gateway-channel': 'gateway channel',
  resumable: 'resumable leg (`holdfast connect`)',
};

export function reasonTable(): string {
  const rows = ['| reason | ends | meaning |', '|---|---|---|'];
  for (const [name, spec] of Object.entries(CLOSE_REASONS) as Array<[CloseReason, ReasonSpec]>) {
    rows.push(`| \`${name}\` | ${spec.scopes.map((s) => SCOPE_NAMES[s]).join(', ')} | ${spec.meaning.replace(/\|/g, '\\|')} |`);
  }
  return rows.join('\n');
}
