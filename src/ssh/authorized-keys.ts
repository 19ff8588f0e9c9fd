/**
 * authorized_keys in OpenSSH format (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"), options included.
 * ssh2's parseKey rejects lines with options, so options are parsed here. Options that restrict
 * what a jump host does are honoured: from=, permitopen=, no-port-forwarding, restrict (and
 * port-forwarding after it), expiry-time=; for gateway sessions also no-pty, no-agent-forwarding
 * (and pty, agent-forwarding after restrict) and command= (a key with a forced command gets no
 * gateway session: holdfast cannot force it on the target). Options about X11, user rc or tunnels
 * have nothing to act on. An unknown option makes the line unusable, as in sshd.
 * cert-authority lines (with principals="...") name a CA whose user certificates may log in as this
 * user (src/session/cert-login.ts); such a key never logs in itself.
 */
import net from 'node:net';
import { utils, type ParsedKey } from './ssh2.js';
import { patternListVerdict, wildcardMatch } from '../routing/wildcard.js';
import { inBlockList, parseCidr } from '../routing/destination.js';
import { canonicalAddress, unmapIPv4 } from '../routing/canonical.js';

export interface PermitOpen {
  readonly host: string; // '*' = any
  readonly port: number | '*';
}

export interface KeyOptions {
  readonly from?: readonly string[];
  readonly permitOpen?: readonly PermitOpen[];
  readonly portForwarding: boolean;
  /** Gateway sessions: may the user ask for a pty / agent forwarding (no-pty, no-agent-forwarding, restrict). */
  readonly pty: boolean;
  readonly agentForwarding: boolean;
  /** command="..." (sshd's forced command). */
  readonly command?: string;
  readonly expiresAt?: Date;
}

/** What a session logged in with: an authorized_keys line, or a certificate (and what trusted it). */
export interface LoginKey {
  /** The authorized_keys (or principals file) line; 0 for a certificate trusted by trustedUserCAKeys alone. */
  readonly line: number;
  readonly type: string;
  /** SSH wire-format public key (or the whole certificate), compared with what the client offers. */
  readonly publicSSH: Buffer;
  readonly comment: string;
  readonly options: KeyOptions;
  readonly certificate?: CertificateLogin;
}

/** A certificate login: the certificate's facts for the log, and the rule that trusted its CA. */
export interface CertificateLogin {
  readonly keyId: string;
  readonly serial: string;
  readonly principal: string;
  readonly caFingerprint: string;
  /** The certified key's fingerprint, as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  readonly trustedBy: string;
}

export interface AuthorizedKey extends LoginKey {
  readonly key: ParsedKey;
  /** A `cert-authority` line: this key is a CA, never a login key; `principals` from principals="...". */
  readonly certAuthority?: { readonly principals?: readonly string[] };
}

export interface SkippedLine {
  readonly line: number;
  readonly why: string;
}

export interface ParsedAuthorizedKeys {
  readonly keys: readonly AuthorizedKey[];
  readonly skipped: readonly SkippedLine[];
}

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+|[a-z0-9-]+-cert-v01@openssh\.com)$/;

/** Options that only concern sessions, agents, X11, ptys, tunnels or remote forwarding. */
const INERT_FLAGS = new Set([
  'x11-forwarding', 'no-x11-forwarding',
  'user-rc', 'no-user-rc', 'no-touch-required', 'verify-required', 'touch-required',
]);
const INERT_VALUES = new Set(['environment', 'tunnel', 'permitlisten']);

export function parseAuthorizedKeys(text: string): ParsedAuthorizedKeys {
  const keys: AuthorizedKey[] = [];
  const skipped: SkippedLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const r = parseLine(raw);
    if ('why' in r) skipped.push({ line: i + 1, why: r.why });
    else keys.push({ line: i + 1, ...r });
  }
  return { keys, skipped };
}

function parseLine(raw: string): Omit<AuthorizedKey, 'line'> | { why: string } {
  let rest = raw;
  let optionText = '';
  const firstWord = raw.split(/\s+/, 1)[0]!;
  if (!KEY_TYPE.test(firstWord)) {
    const end = endOfOptions(raw);
    if (end < 0) return { why: 'unterminated quote in options' };
    optionText = raw.slice(0, end);
    rest = raw.slice(end).trimStart();
  }
  const [type, b64, ...commentWords] = rest.split(/\s+/);
  if (!type || !b64) return { why: 'expected "[options] key-type base64-key [comment]"' };
  if (type.startsWith('sk-')) return { why: `${type} (security-key) keys are not supported by holdfast` };
  if (type.endsWith('-cert-v01@openssh.com')) return { why: 'certificates are not supported by holdfast' };

  const options = parseOptions(optionText);
  if ('why' in options) return options;
  if (options.principals && !options.certAuthority) return { why: 'principals= belongs on a cert-authority line' };

  const parsed = utils.parseKey(`${type} ${b64}`);
  if (parsed instanceof Error) return { why: `bad key: ${parsed.message}` };
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) return { why: 'bad key' };
  if (key.type !== type) return { why: `key type ${key.type} does not match the line's ${type}` };
  const certAuthority = options.certAuthority ? { ...(options.principals ? { principals: options.principals } : {}) } : undefined;
  return { type, key, publicSSH: key.getPublicSSH(), comment: commentWords.join(' '), options: options.options, ...(certAuthority ? { certAuthority } : {}) };
}

/** Index just past the options field: the first whitespace outside double quotes. */
export function endOfOptions(s: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) return i;
  }
  return quoted ? -1 : s.length;
}

export function parseOptions(text: string): { options: KeyOptions; certAuthority: boolean; principals?: string[] } | { why: string } {
  let from: string[] | undefined;
  const permitOpen: PermitOpen[] = [];
  let portForwarding = true;
  let pty = true;
  let agentForwarding = true;
  let command: string | undefined;
  let expiresAt: Date | undefined;
  let certAuthority = false;
  let principals: string[] | undefined;
  for (const opt of splitOptions(text)) {
    const eq = opt.indexOf('=');
    const name = (eq < 0 ? opt : opt.slice(0, eq)).toLowerCase();
    let value: string | undefined;
    if (eq >= 0) {
      const v = opt.slice(eq + 1);
      if (!(v.startsWith('"') && v.endsWith('"') && v.length >= 2)) return { why: `option ${name}= needs a quoted value` };
      value = v.slice(1, -1).replace(/\\"/g, '"');
    }
    if (value === undefined) {
      if (name === 'restrict') portForwarding = pty = agentForwarding = false;
      else if (name === 'no-port-forwarding') portForwarding = false;
      else if (name === 'port-forwarding') portForwarding = true;
      else if (name === 'no-pty') pty = false;
      else if (name === 'pty') pty = true;
      else if (name === 'no-agent-forwarding') agentForwarding = false;
      else if (name === 'agent-forwarding') agentForwarding = true;
      else if (name === 'cert-authority') certAuthority = true;
      else if (!INERT_FLAGS.has(name)) return { why: `unknown option "${name}"` };
      continue;
    }
    if (name === 'from') {
      from = value.split(',').map((p) => p.trim()).filter(Boolean);
      if (from.length === 0) return { why: 'from="" is empty' };
    } else if (name === 'permitopen') {
      const p = parsePermitOpen(value);
      if (!p) return { why: `permitopen="${value}" is not host:port` };
      permitOpen.push(p);
    } else if (name === 'command') {
      command = value;
    } else if (name === 'principals') {
      principals = value.split(',').map((p) => p.trim()).filter(Boolean);
      if (principals.length === 0) return { why: 'principals="" is empty' };
    } else if (name === 'expiry-time') {
      const d = parseExpiry(value);
      if (!d) return { why: `expiry-time="${value}" is not YYYYMMDD[HHMM[SS]]` };
      expiresAt = d;
    } else if (!INERT_VALUES.has(name)) {
      return { why: `unknown option "${name}"` };
    }
  }
  const options: KeyOptions = {
    portForwarding,
    pty,
    agentForwarding,
    ...(command !== undefined ? { command } : {}),
    ...(from ? { from } : {}),
    ...(permitOpen.length ? { permitOpen } : {}),
    ...(expiresAt ? { expiresAt } : {}),
  };
  return { options, certAuthority, ...(principals ? { principals } : {}) };
}

function splitOptions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && quoted && text[i + 1] === '"') {
      cur += '\\"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ',' && !quoted) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

function parsePermitOpen(v: string): PermitOpen | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5}|\*)$/.exec(v.trim());
  if (!m) return null;
  const raw = (m[1] ?? m[2])!;
  // Compared with the canonical destination (src/routing/canonical.ts): addresses in one spelling,
  // names in lower case without a trailing dot.
  const host = net.isIP(raw) ? canonicalAddress(raw) : raw.toLowerCase().replace(/\.$/, '');
  const port = m[3] === '*' ? '*' : Number(m[3]);
  if (port !== '*' && (port < 1 || port > 65535)) return null;
  return { host, port };
}

/** expiry-time: YYYYMMDD[HHMM[SS]], local time unless it ends in Z (sshd's rule). */
function parseExpiry(v: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(v);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', z] = m;
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  const date = z ? new Date(Date.UTC(...parts)) : new Date(...parts);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** expiry-time=: the line no longer admits anything at `now`. */
export function optionsExpired(options: KeyOptions, now: Date): boolean {
  return options.expiresAt !== undefined && options.expiresAt.getTime() <= now.getTime();
}

/** from=: patterns matched against the client's address (holdfast does no reverse DNS, like sshd with UseDNS no). */
export function fromAllows(options: KeyOptions, clientIp: string): boolean {
  if (!options.from) return true;
  const ip = unmapIPv4(clientIp);
  const bare = (raw: string) => (raw.startsWith('!') ? raw.slice(1) : raw);
  const hit = (raw: string) => (bare(raw).includes('/') ? cidrMatch(bare(raw), ip) : wildcardMatch(ip, bare(raw)));
  return patternListVerdict(options.from, (raw) => raw.startsWith('!'), hit).verdict === 'included';
}

function cidrMatch(cidr: string, ip: string): boolean {
  const parsed = parseCidr(cidr);
  return parsed !== null && inBlockList(parsed, ip);
}

/** permitopen=: matched against the host and port as the client requested them (sshd does the same). */
export function permitOpenAllows(options: Pick<KeyOptions, 'permitOpen'>, host: string, port: number): boolean {
  if (!options.permitOpen) return true;
  return options.permitOpen.some(
    (p) => (p.host === '*' || p.host.toLowerCase() === host.toLowerCase()) && (p.port === '*' || p.port === port),
  );
}

