/**
 * known_hosts in OpenSSH format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): host patterns with `!`,
 * `[host]:port` for ports other than 22, hashed names (`|1|salt|hmac-sha1`), `@revoked` markers.
 * `@cert-authority` lines are skipped (no certificate support). Lookups answer like OpenSSH's
 * check_host_in_hostfile: ok, changed (the host is known with another key of the same type),
 * revoked, or unknown.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { matchPatternList } from '../routing/wildcard.js';

export interface KnownHost {
  readonly file: string;
  readonly line: number;
  readonly revoked: boolean;
  readonly hashed?: { salt: Buffer; hash: Buffer };
  readonly patterns?: readonly string[];
  readonly type: string;
  readonly blob: Buffer;
}

export function hostToken(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string, file: string): KnownHost[] {
  const out: KnownHost[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let revoked = false;
    if (parts[0]!.startsWith('@')) {
      const marker = parts.shift()!;
      if (marker === '@revoked') revoked = true;
      else return; // @cert-authority and unknown markers: not usable without certificate support
    }
    const [hosts, type, b64] = parts;
    if (!hosts || !type || !b64) return;
    const blob = Buffer.from(b64, 'base64');
    if (blob.length === 0) return;
    const entry = { file, line: i + 1, revoked, type, blob };
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|');
      if (!salt || !hash) return;
      out.push({ ...entry, hashed: { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') } });
    } else {
      out.push({ ...entry, patterns: hosts.split(',') });
    }
  });
  return out;
}

export function readKnownHosts(files: readonly (string | undefined)[]): KnownHost[] {
  const out: KnownHost[] = [];
  for (const f of files) {
    if (!f) continue;
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    out.push(...parseKnownHosts(text, f));
  }
  return out;
}

function matches(e: KnownHost, token: string): boolean {
  if (e.hashed) {
    const h = crypto.createHmac('sha1', e.hashed.salt).update(token).digest();
    return h.length === e.hashed.hash.length && crypto.timingSafeEqual(h, e.hashed.hash);
  }
  return matchPatternList([token], e.patterns ?? []);
}

export type HostKeyVerdict =
  | { readonly verdict: 'ok'; readonly entry: KnownHost }
  | { readonly verdict: 'revoked'; readonly entry: KnownHost }
  | { readonly verdict: 'changed'; readonly entry: KnownHost }
  | { readonly verdict: 'unknown' };

export function checkHostKey(entries: readonly KnownHost[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const token = hostToken(host, port);
  const type = keyType(blob);
  let changed: KnownHost | undefined;
  for (const e of entries) {
    if (e.revoked && e.blob.equals(blob)) return { verdict: 'revoked', entry: e };
  }
  for (const e of entries) {
    if (e.revoked || !matches(e, token)) continue;
    if (e.blob.equals(blob)) return { verdict: 'ok', entry: e };
    if (e.type === type) changed ??= e;
  }
  return changed ? { verdict: 'changed', entry: changed } : { verdict: 'unknown' };
}

/** Host key algorithms to offer: the types already known for this host first (OpenSSH's order_hostkeyalgs). */
export function knownTypes(entries: readonly KnownHost[], host: string, port: number): string[] {
  const token = hostToken(host, port);
  const types = new Set<string>();
  for (const e of entries) if (!e.revoked && matches(e, token)) types.add(e.type);
  return [...types].flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [t]));
}

export function keyType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** accept-new: records a key in holdfast's own known_hosts (0600, folder 0700). */
export function appendKnownHost(file: string, host: string, port: number, blob: Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.appendFileSync(file, `${hostToken(host, port)} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
