/**
 * The config schema: the ONLY place that knows the config's shapes, defaults, units and docs.
 * `holdfast schema` (JSON Schema for editors), `holdfast check`, docs/configuration.md's key table and the
 * loader all come from here, so they cannot drift apart.
 */
import { z } from 'zod';
import { parseSubnet } from '../routing/destination.js';
import { durationDefault } from './schema-units.js';
import { KeepalivePolicySchema, RouteSchema, UpstreamSchema, resumeFields } from './schema-route.js';
const ListenSchema = z.strictObject({
  address: z.string().min(1).default('0.0.0.0').describe('Address to listen on (0.0.0.0, ::, 127.0.0.1, ...).'),
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(2222)
    .describe('TCP port; 0 picks a free port (logged at start-up).'),
  proxyProtocol: z
    .strictObject({
      trusted: z
        .array(
          z.string().refine((s) => parseSubnet(s) !== null, {
            error: (i) => `${JSON.stringify(i.input)} is not an IP address or CIDR subnet (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.10)`,
          }),
        )
        .min(1, { error: 'list the load balancers (an empty list would refuse every connection); remove proxyProtocol for direct clients' })
        .describe('The load balancers allowed to connect, as addresses or CIDR subnets: a connection from anywhere else is closed.'),
    })
    .optional()
    .describe(
      'Every connection on this listener must come from a `trusted` balancer and begin with a PROXY protocol header (v1 or v2, within 3 s): its client address is then the one holdfast logs and checks (from=, per-source limits). v2 LOCAL (health checks) is closed quietly; v1 UNKNOWN / v2 UNSPEC keep the balancer\'s address. Changes apply on reload.',
    ),
});

export const ConfigSchema = z
  .strictObject({
    listen: z
      .array(ListenSchema)
      .min(1)
      .default([{ address: '0.0.0.0', port: 2222 }])
      .describe('Where holdfast accepts SSH connections.'),
    hostKeys: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'Host key files (OpenSSH format). A missing file is created (ed25519, mode 0600). Default: ssh_host_ed25519_key in the state directory.',
      ),
    authorizedKeys: z
      .string()
      .min(1)
      .default('~/.ssh/authorized_keys')
      .describe(
        'authorized_keys file (OpenSSH format, options honoured). %u = user name, %% = %, ~ = home of the user holdfast runs as.',
      ),
    trustedUserCAKeys: z
      .string()
      .min(1)
      .optional()
      .describe(
        "OpenSSH public keys of CAs (one per line) whose user certificates may log in, as sshd's TrustedUserCAKeys: the user name must be one of the certificate's principals, or with authorizedPrincipalsFile one of the user's principal lines. Re-read when it changes.",
      ),
    authorizedPrincipalsFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Per-user file of principal names allowed in certificates from trustedUserCAKeys (sshd AuthorizedPrincipalsFile): `[options] principal` per line, options as in authorized_keys. %u = user name.",
      ),
    revokedKeys: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Revoked keys (sshd RevokedKeys): an OpenSSH KRL (`ssh-keygen -k`: serials, key IDs, keys, fingerprints) or a list of public keys. A revoked user key, certificate or CA key is refused; re-read when it changes; unreadable = every key refused.',
      ),
    hostCertificates: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'OpenSSH host certificates (`ssh-keygen -s CA -h`) for ed25519, ECDSA or RSA host keys in hostKeys (an RSA certificate is offered as rsa-sha2-512/256-cert-v01): clients that trust the CA (`@cert-authority` in known_hosts) connect without a prompt. A change needs a restart.',
      ),
    loginGraceTime: durationDefault('Time allowed from TCP connect to successful authentication (sshd LoginGraceTime).', '30s'),
    maxAuthTries: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(6)
      .describe('Failed authentication attempts allowed per connection (sshd MaxAuthTries).'),
    maxStartups: z
      .union([z.string(), z.number().int()])
      .default('64:30:256')
      .describe(
        'Unauthenticated connections (sshd MaxStartups start:rate:full): from `start` pending, new ones are refused with probability rate %, rising to 100 % at `full`; counted for the whole host, every worker together. Higher than sshd\'s 10:30:100: a jump host sees bursts of parallel logins (Ansible, pssh), and a pending login costs holdfast one socket and ~30 KiB.',
      ),
    perSourceMaxStartups: z
      .union([z.number().int().min(1).max(100000), z.literal('none')])
      .default(32)
      .describe(
        'Unauthenticated connections allowed from one source network at once (sshd 9.8 PerSourceMaxStartups), every worker together; "none" = no per-source limit. Keeps one address from taking every startup slot (pssh runs 32 at once).',
      ),
    perSourceNetBlockSize: z
      .union([z.string(), z.number().int()])
      .default('32:64')
      .describe('Source network size for perSourceMaxStartups, IPv4 bits:IPv6 bits (sshd PerSourceNetBlockSize; /64 is one IPv6 site).'),
    maxSessions: z
      .union([z.number().int().min(1).max(10_000_000), z.literal('auto')])
      .default('auto')
      .describe(
        'Client connections one worker serves at once; more are closed at once with a `session-refused` line. `auto` plans from the process\'s file descriptor limit (RLIMIT_NOFILE, the unit\'s LimitNOFILE): two descriptors a session (its socket and one channel\'s) after a reserve of 64, so holdfast refuses before it runs out. A number above what the limit supports starts with a `fd-limit-low` warning.',
      ),
    maxConnectionsPerUser: z
      .union([z.number().int().min(1).max(1_000_000), z.literal('none')])
      .default(64)
      .describe(
        'Logged-in connections one user may hold at once in a worker (`none` = no cap); one more is closed with reason `user-connection-limit` and a line saying why. Each connection may hold `maxChannels` channels, so this bounds what one user can make holdfast buffer. 64 leaves room for pssh (32 at once) and Ansible forks.',
      ),
    maxQueuedMiBPerUser: z
      .union([z.number().int().min(1).max(1_000_000), z.literal('none')])
      .default(512)
      .describe(
        "MiB one user's channels may make holdfast hold for targets that are not reading (what waits unread in the channels and queued toward the targets: about 2 MiB per stalled channel), per worker. Past it the user's next channel is refused (`queued-bytes`, resource shortage) with a line saying why; channels already open are not touched. 512 is about 200 stalled channels.",
      ),
    maxQueuedMiB: z
      .union([z.number().int().min(1).max(100_000_000), z.literal('auto'), z.literal('none')])
      .default('auto')
      .describe(
        'The same bound for all users of a worker together. `auto`: a quarter of the memory holdfast may use (the cgroup\'s memory.max, e.g. systemd MemoryMax=, else the machine\'s), shared by the workers.',
      ),
    maxChannels: z
      .number()
      .int()
      .min(1)
      .max(10000)
      .default(100)
      .describe('Concurrent forwarded channels allowed per client connection (each holds a socket to a target).'),
    connectTimeout: durationDefault('Bound on connecting to a destination; the user then sees "connect failed".', '10s', { ms: 100, why: 'a shorter bound fails every channel before a target can answer' }),
    shutdownTimeout: durationDefault('On SIGTERM/SIGINT: how long sessions get to close before they are cut.', '5s'),
    drainTimeout: durationDefault(
      'After an upgrade in place (SIGUSR2): how long sessions opened on the old code may carry on before they are closed with reason `shutdown` (the user\'s ssh says so).',
      '8h',
    ),
    workerStartTimeout: durationDefault(
      'How long a new worker (at start, or a new generation after SIGUSR2) has to report that it serves; past it the worker is killed and the upgrade fails (the running generation stays), so a hung start never blocks later upgrades.',
      '60s',
      { ms: 1000, why: 'a worker needs longer than that to load and bind' },
    ),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')])
      .default(1)
      .describe(
        'Worker processes serving sessions (`auto` = one per core). Each has its own bastion pool, window budgets and per-user limits; the startup limits are counted for all of them together. A change applies at the next SIGUSR2 (or restart).',
      ),
    idleTimeout: durationDefault(
      'Close a channel after this long with no channel data either way, and a connection left with no channel for this long (OpenSSH ChannelTimeout/UnusedConnectionTimeout); keepalive traffic never counts as activity. 0 = off. Routes can set their own. In gateway mode the user is warned 60 s before (at half the timeout when shorter).',
      '0',
    ),
    admin: z
      .strictObject({
        address: z.string().min(1).default('127.0.0.1').describe('Address of the admin listener (keep it on loopback or a management network).'),
        port: z.number().int().min(1).max(65535).describe('TCP port of the admin listener (the examples use 9750).'),
        tokenFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'A file holding a bearer token (at least 16 characters, e.g. `openssl rand -hex 32`; mode 0600): /metrics and /sessions then answer only requests with `Authorization: Bearer <token>` (401 otherwise); /healthz stays open for health checks. `holdfast sessions --config` sends it. Ending a session (`holdfast sessions --close`) needs it. Read at start and at each SIGHUP (a rotated token applies then).',
          ),
      })
      .optional()
      .describe(
        'HTTP admin listener, off unless configured: GET /metrics (Prometheus), /healthz (200 while accepting, 503 while shutting down) and /sessions (JSON, what `holdfast sessions` shows). Served by the main process for every worker; never reachable through holdfast\'s own forwarding. A SIGHUP applies a change (the listener is reopened).',
      ),
    resume: z
      .strictObject({
        detachTimeout: durationDefault(resumeFields.detachTimeout.description!, '10m'),
        sameSource: resumeFields.sameSource.default(false),
        bufferMiB: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .default(4)
          .describe('MiB a resumable session keeps for each direction until the other side acknowledges it (what a resume replays). When full, that side stops reading (back-pressure), it never drops a byte.'),
        maxDetachedPerUser: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(16)
          .describe('Resumable sessions one user may have detached at once, per worker; one more detaching closes the oldest detached one.'),
      })
      .prefault({})
      .describe('Resumable client legs (`holdfast connect`, the `holdfast-resume` subsystem): the session survives the client\'s network going away.'),
    logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info').describe('Least severe level logged.'),
    keepalive: z
      .strictObject({
        client: KeepalivePolicySchema.prefault({}),
        upstream: KeepalivePolicySchema.prefault({}),
      })
      .prefault({})
      .describe('Default keepalive policy of each leg, for every route.'),
    upstreams: z
      .record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'upstream names use letters, digits, ".", "_" and "-"'), UpstreamSchema)
      .default({})
      .describe('SSH bastions, by name, for routes with `via`.'),
    upstreamPool: z
      .strictObject({
        max: z.number().int().min(1).max(10000).default(64).describe('Most pooled bastion connections; past it the least recently used idle one is closed.'),
        idleTimeout: durationDefault('A pooled bastion connection with no channel for this long is closed.', '2m'),
      })
      .prefault({})
      .describe('One SSH connection per bastion (chain) is shared by all channels through it, like ControlMaster.'),
    routes: z
      .array(RouteSchema)
      .describe('Who may reach which destinations, with which keepalive. First match wins; no match = refused.'),
  })
  .describe('holdfast configuration');

export type ConfigInput = z.input<typeof ConfigSchema>;
export type ConfigParsed = z.output<typeof ConfigSchema>;
export type KeepalivePolicy = z.output<typeof KeepalivePolicySchema>;

/** JSON Schema (draft 2020-12) of the config file as written, for editors and `holdfast schema`. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: 'https://holdfast.invalid/schema/config.json', title: 'holdfast configuration' };
}
