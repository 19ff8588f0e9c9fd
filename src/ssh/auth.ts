/**
 * Public-key authentication against authorized_keys, the way sshd does it, plus what ssh2 lacks:
 * options (from=, permitopen=, ...), a file-permission check like sshd's StrictModes, and no SHA-1
 * RSA signatures (OpenSSH refuses ssh-rsa since 8.8; holdfast accepts rsa-sha2-256/512).
 * Parsed files are cached (src/ssh/file-cache.ts): a busy host does not re-parse a file per
 * attempt and an edited file is seen at once.
 */
import crypto from 'node:crypto';
import { ParsedFileCache } from './file-cache.js';
import { parseAuthorizedKeys, fromAllows, optionsExpired, type AuthorizedKey, type ParsedAuthorizedKeys } from './authorized-keys.js';
import { expandUserTemplate, isSafeUserName } from '../config/paths.js';

export type KeyLookup =
  | { readonly ok: true; readonly keys: readonly AuthorizedKey[]; readonly file: string; readonly skipped: ParsedAuthorizedKeys['skipped'] }
  | { readonly ok: false; readonly file?: string; readonly why: string };

export class AuthorizedKeysStore {
  private readonly files: ParsedFileCache<ParsedAuthorizedKeys>;

  constructor(
    private readonly template: string,
    /** Told about unusable lines each time a file is (re)parsed, so operators see them once per edit. */
    onSkipped: (file: string, skipped: ParsedAuthorizedKeys['skipped']) => void = () => {},
  ) {
    this.files = new ParsedFileCache(
      (data, file) => {
        const parsed = parseAuthorizedKeys(data.toString('utf8'));
        if (parsed.skipped.length > 0) onSkipped(file, parsed.skipped);
        return parsed;
      },
      { strict: true },
    );
  }

  lookup(user: string): KeyLookup {
    if (!isSafeUserName(user)) return { ok: false, why: 'user name has characters holdfast does not accept' };
    const r = this.files.read(expandUserTemplate(this.template, user));
    return r.ok ? { ok: true, keys: r.value.keys, skipped: r.value.skipped, file: r.file } : r;
  }
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
    // A CA's key vouches for certificates; it never logs in itself.
    if (entry.certAuthority || !sameBytes(entry.publicSSH, offered.data)) continue;
    sawKey = true;
    if (optionsExpired(entry.options, now)) {
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
