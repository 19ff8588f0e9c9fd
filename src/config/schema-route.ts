/**
 * The schema of one route and its parts: a leg's keepalive policy (and a route's override of it),
 * the destinations, `via` (an upstream bastion), gateway mode, resumption. Part of the config schema
 * (src/config/schema.ts), the only place for shapes, defaults, units and docs.
 */
import { z } from 'zod';
import { parseDestinationPattern } from '../routing/destination.js';
import { duration, durationDefault } from './schema-units.js';

const countMax = z
  .number()
  .int('countMax must be a whole number')
  .min(0)
  .max(1000)
  .describe('Unanswered probes before the leg is declared dead; 0 = probe but never declare it dead (OpenSSH meaning).');

const intervalDoc =
  'A probe goes out after this long with nothing received on the leg; 0 turns the leg\'s keepalive off.';

export const KeepalivePolicySchema = z
  .strictObject({
    interval: durationDefault(intervalDoc, '30s'),
    countMax: countMax.default(3),
  })
  .describe('Keepalive policy of one leg: dead after interval × (countMax + 1) with nothing received.');

const KeepalivePolicyOverrideSchema = z
  .strictObject({
    interval: duration(intervalDoc).optional(),
    countMax: countMax.optional(),
  })
  .describe('Per-route override of one leg\'s policy; unset fields come from the top-level keepalive.');

const DestinationSchema = z.string().transform((s, ctx) => {
  const r = parseDestinationPattern(s);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.value;
});

export const UpstreamSchema = z
  .strictObject({
    host: z.string().min(1).describe('Bastion host name or address.'),
    port: z.number().int().min(1).max(65535).default(22).describe('Bastion SSH port.'),
    user: z.string().min(1).describe('User holdfast logs in as on the bastion.'),
    identity: z.string().min(1).describe("holdfast's own private key for this bastion (OpenSSH format)."),
    knownHosts: z
      .string()
      .min(1)
      .optional()
      .describe('known_hosts file (OpenSSH format, hashed entries too) the bastion\'s host key is checked against.'),
    hostKeyPolicy: z
      .enum(['strict', 'accept-new'])
      .default('strict')
      .describe(
        'strict: unknown host keys are refused; accept-new: an unknown key is recorded in holdfast\'s own known_hosts in the state directory. A changed key is always refused.',
      ),
  })
  .describe('An SSH bastion holdfast reaches targets through (`via`).');

export const GatewaySchema = z
  .strictObject({
    user: z
      .string()
      .min(1)
      .default('%u')
      .describe('User name holdfast logs in as on the target; %u = the user\'s own name (before the +).'),
    identity: z
      .string()
      .min(1)
      .optional()
      .describe("holdfast's own private key for the targets (OpenSSH format). Give this or `agent: true`."),
    agent: z
      .boolean()
      .default(false)
      .describe("Sign the target login with the user's forwarded agent (the user connects with ssh -A) instead of `identity`."),
    knownHosts: z
      .string()
      .min(1)
      .optional()
      .describe('known_hosts file (OpenSSH format, hashed entries too) the target\'s host key is checked against.'),
    hostKeyPolicy: z
      .enum(['strict', 'accept-new'])
      .default('strict')
      .describe("strict: unknown host keys are refused; accept-new: an unknown key is recorded in holdfast's own known_hosts. A changed key is always refused."),
  })
  .describe(
    'Gateway mode: holdfast terminates the user\'s SSH (`ssh -p PORT user+target[+port]@holdfast`) and opens its own SSH connection to the target. Such a route serves only gateway logins, never `ssh -J`.',
  );

export const resumeFields = {
  detachTimeout: duration(
    'How long a resumable session (`holdfast connect`) whose transport died keeps its target connection, reading into its buffer, waiting for the helper to come back; then it is closed (`detach-timeout`). 10m covers a laptop lid closed for a meeting hand-over, a VPN or Wi-Fi reconnect and an LTE hand-off; the target sshd\'s own ClientAlive* may end it sooner.',
  ),
  sameSource: z.boolean().describe('true: a resume must come from the address the session came from (no roaming); default false, and a new address is logged with the old one.'),
};

/** `resume` under a route: any field overrides the top-level one. */
const ResumeOverrideSchema = z
  .strictObject({ detachTimeout: resumeFields.detachTimeout.optional(), sameSource: resumeFields.sameSource.optional() })
  .describe('Resumable sessions (`holdfast connect`) on this route; unset fields fall back to the top-level `resume`.');

export const RouteSchema = z.strictObject({
  name: z.string().min(1).describe('Name used in logs and `holdfast explain`.'),
  users: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('User-name patterns (`*`, `?`, `!` to exclude) allowed to use this route; default: any authenticated user.'),
  to: z
    .array(DestinationSchema)
    .min(1)
    .describe(
      'Destinations: ssh_config host pattern (`*`, `?`, `!` to exclude) or CIDR, with optional `:port` (default 22, `*` any).',
    ),
  via: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1).max(8)])
    .optional()
    .describe(
      'Reach the destination through these `upstreams` (a name, or a list [outer, inner] for a chain). The last bastion resolves the destination name.',
    ),
  gateway: GatewaySchema.optional(),
  keepalive: z
    .strictObject({
      client: KeepalivePolicyOverrideSchema.optional(),
      upstream: KeepalivePolicyOverrideSchema.optional(),
    })
    .optional()
    .describe('Per-leg keepalive for sessions on this route; unset fields fall back to the top-level keepalive.'),
  idleTimeout: duration(
    'Close a channel on this route after this long with no channel data either way (keepalive traffic does not count); 0 = off. Default: the top-level idleTimeout.',
  ).optional(),
  resume: ResumeOverrideSchema.optional(),
  maxSessionTime: duration(
    'Close a connection with a channel on this route once it is this old (reason session-time-limit), however busy; 0 or unset = no limit. In gateway mode the user is warned 60 s before (at half the limit when shorter).',
  ).optional(),
});
