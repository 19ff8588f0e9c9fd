/**
 * From the schema's output to the config holdfast runs on: paths made absolute, per-route keepalive
 * merged over the defaults, files checked, everything frozen. Semantic problems are returned with the
 * key path they belong to; the loader turns that path into FILE:LINE:COL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigParsed, KeepalivePolicy } from './schema.js';
import { hasUserTemplate, resolveConfigPath, stateDir } from './paths.js';
import type { RouteRule } from '../routing/route-table.js';
import type { DestinationPattern } from '../routing/destination.js';
import { inspectHostKey } from '../ssh/host-keys.js';
import { checkAuthorizedKeys } from './key-files.js';
import { resolveCertificates } from './resolve-certificates.js';
import { resolveAdmin, type AdminListener } from './resolve-admin.js';
import { parseMaxStartups, parseNetBlockSize, type StartupLimits } from '../startups.js';

export interface LegPolicies {
  readonly client: Readonly<KeepalivePolicy>;
  readonly upstream: Readonly<KeepalivePolicy>;
}

export interface ResolvedUpstream {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Absolute path of holdfast's private key for this bastion. */
  readonly identity: string;
  readonly knownHosts?: string | undefined;
  readonly hostKeyPolicy: 'strict' | 'accept-new';
}

export interface ResolvedGateway {
  /** May contain %u (the user's own name). */
  readonly user: string;
  /** Absolute path of holdfast's private key for the targets; undefined = sign with the user's agent. */
  readonly identity?: string | undefined;
  readonly agent: boolean;
  readonly knownHosts?: string | undefined;
  readonly hostKeyPolicy: 'strict' | 'accept-new';
}

export interface ResolvedRoute extends RouteRule {
  readonly name: string;
  /** Gateway mode: holdfast logs in to the target itself. Such routes serve only gateway logins. */
  readonly gateway?: ResolvedGateway | undefined;
  /** Bastion chain, outermost first; undefined = connect directly. */
  readonly via?: readonly ResolvedUpstream[] | undefined;
  readonly users?: readonly string[] | undefined;
  readonly to: readonly DestinationPattern[];
  readonly keepalive: LegPolicies;
  /** Channel idle limit (0 = off): the route's own, else the top-level one. */
  readonly idleTimeoutMs: number;
  /** Absolute limit on a connection with a channel on this route (0 = none). */
  readonly maxSessionTimeMs: number;
  /** Resumable sessions on this route (the top-level `resume` with the route's overrides). */
  readonly resume: { readonly detachTimeoutMs: number; readonly sameSource: boolean };
}

/** One listener; with `proxyProtocol`, connections come from these balancers with a PROXY header. */
export interface Listener {
  readonly address: string;
  readonly port: number;
  readonly proxyProtocol?: { readonly trusted: readonly string[] };
}

export interface ResolvedConfig {
  /** The config file as named by the operator, or "<embedded default>". */
  readonly source: string;
  readonly embedded: boolean;
  readonly listen: readonly Listener[];
  readonly hostKeys: readonly string[];
  /** Absolute path, may contain %u. */
  readonly authorizedKeys: string;
  /** Certificates and revocation (src/ssh/user-ca.ts): absolute paths; the principals file may contain %u. */
  readonly trustedUserCAKeys?: string | undefined;
  readonly authorizedPrincipalsFile?: string | undefined;
  readonly revokedKeys?: string | undefined;
  /** Host certificates presented with the host keys they certify (absolute paths). */
  readonly hostCertificates: readonly string[];
  readonly loginGraceTimeMs: number;
  readonly maxAuthTries: number;
  readonly maxChannels: number;
  /** Logged-in connections one user may hold in a worker (Infinity for `none`). */
  readonly maxConnectionsPerUser: number;
  /** Bytes one user's channels may make a worker hold for targets that do not read (Infinity for `none`). */
  readonly maxQueuedBytesPerUser: number;
  /** The same for all users of a worker (`auto` resolved: a quarter of the memory limit, shared by the workers). */
  readonly maxQueuedBytes: number;
  /** Resumable client legs: each direction's replay buffer, and how many one user may have detached. */
  readonly resume: { readonly bufferBytes: number; readonly maxDetachedPerUser: number };
  /** Client connections per worker, or `auto` (planned from RLIMIT_NOFILE: src/fd-budget.ts). */
  readonly maxSessions: number | 'auto';
  /** maxStartups, perSourceMaxStartups, perSourceNetBlockSize (src/startups.ts). */
  readonly startups: StartupLimits;
  readonly connectTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  /** After SIGUSR2: how long the old generation's sessions may carry on. */
  readonly drainTimeoutMs: number;
  readonly workerStartTimeoutMs: number;
  /** Worker processes (`auto` resolved to the number of cores). */
  readonly workers: number;
  readonly logLevel: 'error' | 'warn' | 'info' | 'debug';
  readonly keepalive: LegPolicies;
  /** The admin HTTP listener (metrics, health, sessions), when configured. */
  readonly admin: AdminListener | undefined;
  /** A connection with no channel for this long is closed (0 = off); routes default their channel limit to it. */
  readonly idleTimeoutMs: number;
  readonly upstreams: Readonly<Record<string, ResolvedUpstream>>;
  readonly upstreamPool: { readonly max: number; readonly idleTimeoutMs: number };
  /** holdfast's own known_hosts (accept-new records here), in the state directory. */
  readonly ownKnownHosts: string;
  readonly routes: readonly ResolvedRoute[];
}

export interface ResolveContext {
  readonly source: string;
  readonly baseDir: string;
  readonly embedded: boolean;
  readonly env: NodeJS.ProcessEnv;
}

export interface SemanticProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export function resolveConfig(
  c: ConfigParsed,
  ctx: ResolveContext,
): { config: ResolvedConfig; problems: SemanticProblem[]; warnings: string[] } {
  const problems: SemanticProblem[] = [];
  const warnings: string[] = [];

  const hostKeys = (c.hostKeys ?? [path.join(stateDir(ctx.env), 'ssh_host_ed25519_key')]).map((p) =>
    resolveConfigPath(p, ctx.baseDir),
  );
  hostKeys.forEach((file, i) => {
    const state = inspectHostKey(file);
    if (state.state === 'bad') problems.push({ path: c.hostKeys ? ['hostKeys', i] : [], message: state.message });
  });

  const authorizedKeys = resolveConfigPath(c.authorizedKeys, ctx.baseDir);
  checkAuthorizedKeys(authorizedKeys, ctx.embedded, { problems, warnings });

  // A user name is only a claim unless the key source binds it: with one authorized_keys file for
  // everyone, any key in it logs in under any name, so a `users` rule or a gateway login as `%u`
  // would be decided by what the client typed.
  if (!hasUserTemplate(authorizedKeys)) {
    const fix = `put %u in authorizedKeys (e.g. /etc/holdfast/authorized_keys/%u) so that each user name has its own keys`;
    c.routes.forEach((r, i) => {
      if (r.users && r.users.some((u) => u !== '*')) {
        problems.push({ path: ['routes', i, 'users'], message: `users ${JSON.stringify(r.users)} cannot be enforced: authorizedKeys ${authorizedKeys} is one file for every user name, so any key in it can log in as any name; ${fix}` });
      }
      if (r.gateway && hasUserTemplate(r.gateway.user)) {
        problems.push({ path: ['routes', i, 'gateway', 'user'], message: `gateway user "${r.gateway.user}" logs in to the target under the name the client typed, but authorizedKeys ${authorizedKeys} is one file for every user name; ${fix}, or give a fixed user:` });
      }
    });
  }

  const certs = resolveCertificates(c, ctx.baseDir, hostKeys, problems, warnings);

  const ms = parseMaxStartups(c.maxStartups);
  if (!ms.ok) problems.push({ path: ['maxStartups'], message: ms.message });
  const nb = parseNetBlockSize(c.perSourceNetBlockSize);
  if (!nb.ok) problems.push({ path: ['perSourceNetBlockSize'], message: nb.message });
  // With a problem the config is refused; the values below are never served.
  const startups: StartupLimits = {
    ...(ms.ok ? ms : { start: 1, rate: 100, full: 1 }),
    perSource: c.perSourceMaxStartups === 'none' ? 0 : c.perSourceMaxStartups,
    ...(nb.ok ? nb : { v4Bits: 32, v6Bits: 128 }),
  };

  const seen = new Map<string, number>();
  c.routes.forEach((r, i) => {
    const first = seen.get(r.name);
    if (first !== undefined) problems.push({ path: ['routes', i, 'name'], message: `duplicate route name "${r.name}" (also routes[${first}])` });
    else seen.set(r.name, i);
  });
  if (c.routes.length === 0) warnings.push('routes: the list is empty, so every destination is refused');
  c.listen.forEach((l, i) => {
    const everyone = l.proxyProtocol?.trusted.filter((t) => /\/0$/.test(t));
    if (everyone?.length) {
      warnings.push(`listen[${i}].proxyProtocol.trusted: ${everyone.join(', ')} trusts every address to say who the client is: anyone who reaches port ${l.port} can claim any source address (from=, source-address, per-source limits); list only the balancers' addresses`);
    }
  });

  /** An identity file and a known_hosts file, as bastions and gateway targets both have them. */
  const checkIdentity = (file: string, where: PropertyKey[], whose: string): string => {
    const identity = resolveConfigPath(file, ctx.baseDir);
    const key = inspectHostKey(identity);
    if (key.state === 'missing') problems.push({ path: [...where, 'identity'], message: `${identity} does not exist (holdfast's private key for ${whose})` });
    else if (key.state === 'bad') problems.push({ path: [...where, 'identity'], message: key.message.replace('host key', 'key') });
    return identity;
  };
  const checkKnownHosts = (file: string | undefined, policy: 'strict' | 'accept-new', where: PropertyKey[], whose: string): string | undefined => {
    const knownHosts = file === undefined ? undefined : resolveConfigPath(file, ctx.baseDir);
    if (knownHosts !== undefined && !fs.existsSync(knownHosts) && policy === 'strict') {
      problems.push({ path: [...where, 'knownHosts'], message: `${knownHosts} does not exist; with hostKeyPolicy strict every connection would be refused` });
    }
    if (knownHosts === undefined && policy === 'strict') {
      problems.push({ path: where, message: `needs knownHosts (or hostKeyPolicy: accept-new) to check the ${whose}'s host key` });
    }
    return knownHosts;
  };

  const upstreams: Record<string, ResolvedUpstream> = {};
  for (const [name, u] of Object.entries(c.upstreams)) {
    const identity = checkIdentity(u.identity, ['upstreams', name], 'this bastion');
    const knownHosts = checkKnownHosts(u.knownHosts, u.hostKeyPolicy, ['upstreams', name], 'bastion');
    upstreams[name] = { name, host: u.host, port: u.port, user: u.user, identity, knownHosts, hostKeyPolicy: u.hostKeyPolicy };
  }

  const gatewayOf = (g: NonNullable<ConfigParsed['routes'][number]['gateway']>, i: number, via: boolean): ResolvedGateway => {
    const where = ['routes', i, 'gateway'];
    if (via) problems.push({ path: where, message: 'a gateway route cannot also have `via` (not supported): give the gateway its own route' });
    if (g.identity !== undefined && g.agent) problems.push({ path: where, message: 'give either identity or agent: true, not both' });
    if (g.identity === undefined && !g.agent) problems.push({ path: where, message: "needs identity (holdfast's own key for the targets) or agent: true (the user's forwarded agent)" });
    const identity = g.identity === undefined ? undefined : checkIdentity(g.identity, where, 'the gateway targets');
    const knownHosts = checkKnownHosts(g.knownHosts, g.hostKeyPolicy, where, 'target');
    return { user: g.user, identity, agent: g.agent, knownHosts, hostKeyPolicy: g.hostKeyPolicy };
  };

  const keepalive: LegPolicies = { client: { ...c.keepalive.client }, upstream: { ...c.keepalive.upstream } };
  const routes: ResolvedRoute[] = c.routes.map((r, i) => ({
    name: r.name,
    users: r.users,
    to: r.to,
    gateway: r.gateway === undefined ? undefined : gatewayOf(r.gateway, i, r.via !== undefined),
    via:
      r.via === undefined
        ? undefined
        : (Array.isArray(r.via) ? r.via : [r.via]).flatMap((n, j) => {
            const u = upstreams[n];
            if (!u) {
              const where = Array.isArray(r.via) ? ['routes', i, 'via', j] : ['routes', i, 'via'];
              const known = Object.keys(upstreams);
              problems.push({ path: where, message: `no upstream named "${n}"${known.length ? ` (upstreams: ${known.join(', ')})` : ' (define it under upstreams:)'}` });
              return [];
            }
            return [u];
          }),
    keepalive: {
      client: { ...keepalive.client, ...defined(r.keepalive?.client) },
      upstream: { ...keepalive.upstream, ...defined(r.keepalive?.upstream) },
    },
    idleTimeoutMs: r.idleTimeout ?? c.idleTimeout,
    maxSessionTimeMs: r.maxSessionTime ?? 0,
    resume: { detachTimeoutMs: r.resume?.detachTimeout ?? c.resume.detachTimeout, sameSource: r.resume?.sameSource ?? c.resume.sameSource },
  }));

  const config: ResolvedConfig = {
    source: ctx.source,
    embedded: ctx.embedded,
    listen: c.listen.map((l) => ({ address: l.address, port: l.port, ...(l.proxyProtocol ? { proxyProtocol: { trusted: l.proxyProtocol.trusted } } : {}) })),
    hostKeys,
    authorizedKeys,
    ...certs,
    loginGraceTimeMs: c.loginGraceTime,
    maxAuthTries: c.maxAuthTries,
    maxChannels: c.maxChannels,
    maxSessions: c.maxSessions,
    maxConnectionsPerUser: c.maxConnectionsPerUser === 'none' ? Infinity : c.maxConnectionsPerUser,
    resume: { bufferBytes: c.resume.bufferMiB * MiB, maxDetachedPerUser: c.resume.maxDetachedPerUser },
    maxQueuedBytesPerUser: c.maxQueuedMiBPerUser === 'none' ? Infinity : c.maxQueuedMiBPerUser * MiB,
    maxQueuedBytes: queuedBound(c.maxQueuedMiB, c.workers === 'auto' ? os.availableParallelism() : c.workers),
    startups,
    connectTimeoutMs: c.connectTimeout,
    shutdownTimeoutMs: c.shutdownTimeout,
    drainTimeoutMs: c.drainTimeout,
    workerStartTimeoutMs: c.workerStartTimeout,
    workers: c.workers === 'auto' ? os.availableParallelism() : c.workers,
    logLevel: c.logLevel,
    keepalive,
    idleTimeoutMs: c.idleTimeout,
    admin: c.admin ? resolveAdmin(c.admin, ctx.baseDir, problems, warnings) : undefined,
    upstreams,
    upstreamPool: { max: c.upstreamPool.max, idleTimeoutMs: c.upstreamPool.idleTimeout },
    ownKnownHosts: path.join(stateDir(ctx.env), 'known_hosts'),
    routes,
  };
  return { config: deepFreeze(config), problems, warnings };
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    // net.BlockList instances inside CIDR patterns are left alone: freezing them is meaningless.
    if (Object.getPrototypeOf(o) !== Object.prototype && !Array.isArray(o)) return o;
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

const MiB = 1024 * 1024;

/** maxQueuedMiB in bytes: `auto` is a quarter of the memory limit (cgroup v2 memory.max, else RAM) per worker. */
function queuedBound(v: number | 'auto' | 'none', workers: number): number {
  if (v === 'none') return Infinity;
  if (v !== 'auto') return v * MiB;
  let limit = os.totalmem();
  try {
    const max = fs.readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (/^\d+$/.test(max)) limit = Math.min(limit, Number(max));
  } catch {
    // No cgroup v2 limit readable: the machine's memory.
  }
  return Math.floor(limit / 4 / Math.max(1, workers));
}
