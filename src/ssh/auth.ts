/**
 * Public-key authentication against authorized_keys, the way sshd does it, plus what ssh2 lacks:
 * options (from=, permitopen=, ...), a file-permission check like sshd's StrictModes, and no SHA-1
 * RSA signatures (OpenSSH refuses ssh-rsa since 8.8; holdfast accepts rsa-sha2-256/512).
 * Parsed files are cached in an lru-cache keyed by path and validated by inode, size and mtime, so a
 * busy host does not re-parse a file per attempt and an edited file is seen at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { parseAuthorizedKeys, fromAllows, type AuthorizedKey, type ParsedAuthorizedKeys } from './authorized-keys.js';
import { expandUserTemplate, isSafeUserName } from '../config/paths.js';

export type KeyLookup =
  | { readonly ok: true; readonly keys: readonly AuthorizedKey[]; readonly file: string; readonly skipped: ParsedAuthorizedKeys['skipped'] }
  | { readonly ok: false; readonly file?: string; readonly why: string };

interface CacheEntry {
  readonly stamp: string;
  readonly parsed: ParsedAuthorizedKeys;
}

export class AuthorizedKeysStore {
  private readonly cache = new LRUCache<string, CacheEntry>({ max: 1024 });

  constructor(
    private readonly template: string,
    /** Told about unusable lines each time a file is (re)parsed, so operators see them once per edit. */
    private readonly onSkipped: (file: string, skipped: ParsedAuthorizedKeys['skipped']) => void = () => {},
  ) {}

  lookup(user: string): KeyLookup {
    if (!isSafeUserName(user)) return { ok: false, why: 'user name has characters holdfast does not accept' };
    const file = expandUserTemplate(this.template, user);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (err) {
      return { ok: false, file, why: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
    if (!st.isFile()) return { ok: false, file, why: `${file} is not a regular file` };
    const unsafe = strictModes(file, st);
    if (unsafe) return { ok: false, file, why: unsafe };
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(file);
    if (hit && hit.stamp === stamp) return { ok: true, keys: hit.parsed.keys, skipped: hit.parsed.skipped, file };
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      return { ok: false, file, why: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
    const parsed = parseAuthorizedKeys(text);
    if (parsed.skipped.length > 0) this.onSkipped(file, parsed.skipped);
    this.cache.set(file, { stamp, parsed });
    return { ok: true, keys: parsed.keys, skipped: parsed.skipped, file };
  }
}

/**
 * sshd's StrictModes for an authorized_keys file (auth.c safe_path): the file and every folder above
 * it must be owned by root or by the user holdfast runs as, and writable by no one else; otherwise
 * someone else could put a key there. One deviation: a root-owned folder with the sticky bit (/tmp)
 * is accepted, since others cannot rename or remove what is in it.
 */
export function strictModes(file: string, st: fs.Stats, uid = process.getuid?.() ?? 0): string | null {
  const owned = (s: fs.Stats) => s.uid === 0 || s.uid === uid;
  if (!owned(st)) return `${file} is owned by uid ${st.uid}, not by root or the user holdfast runs as (chown it)`;
  if ((st.mode & 0o022) !== 0) return `${file} is writable by group or others (chmod go-w ${file})`;
  let dir = path.dirname(file);
  for (let i = 0; i < 64; i++) {
    let d: fs.Stats;
    try {
      d = fs.statSync(dir);
    } catch (err) {
      return `cannot check ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
    if (!owned(d)) return `folder ${dir} above ${file} is owned by uid ${d.uid}, not by root or the user holdfast runs as`;
    const sticky = (d.mode & 0o1000) !== 0 && d.uid === 0;
    if ((d.mode & 0o022) !== 0 && !sticky) return `folder ${dir} above ${file} is writable by group or others (chmod go-w ${dir})`;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

export interface OfferedKey {
  readonly algo: string;
  readonly data: Buffer;
}

export type KeyMatch =
  | { readonly ok: true; readonly entry: AuthorizedKey }
  | { readonly ok: false; readonly why: string };

/** Finds the authorized entry for an offered key and checks the options that gate the login itself. */
export function matchOfferedKey(keys: readonly AuthorizedKey[], offered: OfferedKey, clientIp: string, now: Date): KeyMatch {
  let sawKey = false;
  let lastWhy = 'key not in authorized_keys';
  for (const entry of keys) {
    if (!sameBytes(entry.publicSSH, offered.data)) continue;
    sawKey = true;
    if (entry.options.expiresAt && entry.options.expiresAt.getTime() <= now.getTime()) {
      lastWhy = `key expired (expiry-time, line ${entry.line})`;
      continue;
    }
    if (!fromAllows(entry.options, clientIp)) {
      lastWhy = `source address ${clientIp} not allowed by from= (line ${entry.line})`;
      continue;
    }
    return { ok: true, entry };
  }
  return { ok: false, why: sawKey ? lastWhy : 'key not in authorized_keys' };
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** True when the signature proves possession; refuses SHA-1 RSA signatures. */
export function signatureValid(entry: AuthorizedKey, blob: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  if (entry.type === 'ssh-rsa' && hashAlgo !== 'sha256' && hashAlgo !== 'sha512') return false;
  // verify() may return an Error object instead of false: only `true` counts.
  return entry.key.verify(blob, signature, hashAlgo) === true;
}
