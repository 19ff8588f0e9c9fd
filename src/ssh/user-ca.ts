/**
 * The files behind certificate logins and revocation, each re-read when it changes
 * (src/ssh/file-cache.ts): `trustedUserCAKeys` (CA public keys, one per line), `authorizedPrincipalsFile`
 * (per user, `%u`: principal names, each optionally after authorized_keys-style options, as sshd's
 * AuthorizedPrincipalsFile) and `revokedKeys` (src/ssh/krl.ts).
 */
import { expandUserTemplate, isSafeUserName } from '../config/paths.js';
import { endOfOptions, parseOptions, type KeyOptions } from './authorized-keys.js';
import { ParsedFileCache, type FileRead } from './file-cache.js';
import { RevocationList } from './krl.js';
import { fingerprintSha256, publicKeyFromBlob } from './public-key.js';

export interface CaKey {
  readonly line: number;
  readonly fingerprint: string;
}

export interface PrincipalLine {
  readonly line: number;
  readonly principal: string;
  readonly options: KeyOptions;
}

export interface CertificateSources {
  /** Absolute path of trustedUserCAKeys, if set. */
  readonly trustedUserCAKeys?: string | undefined;
  /** Absolute path template (%u) of authorizedPrincipalsFile, if set. */
  readonly authorizedPrincipalsFile?: string | undefined;
  /** Absolute path of revokedKeys, if set. */
  readonly revokedKeys?: string | undefined;
}

/** trustedUserCAKeys: plain public keys, blank lines and # comments allowed. Throws on a bad line. */
export function parseCaKeys(text: string): Map<string, CaKey> {
  const out = new Map<string, CaKey>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) return;
    const [type, b64] = line.split(/\s+/);
    if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error(`line ${i + 1}: expected "key-type base64-key [comment]"`);
    const blob = Buffer.from(b64, 'base64');
    let key;
    try {
      key = publicKeyFromBlob(blob);
    } catch (err) {
      throw new Error(`line ${i + 1}: ${(err as Error).message}`);
    }
    if (key.type !== type) throw new Error(`line ${i + 1}: key type ${key.type} does not match the line's ${type}`);
    out.set(blob.toString('hex'), { line: i + 1, fingerprint: fingerprintSha256(blob) });
  });
  if (out.size === 0) throw new Error('no CA key in it');
  return out;
}

/** An authorized principals file: `[options] principal` per line. Throws on a bad line. */
export function parsePrincipals(text: string): PrincipalLine[] {
  const out: PrincipalLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) return;
    const end = endOfOptions(line);
    if (end < 0) throw new Error(`line ${i + 1}: unterminated quote in options`);
    const rest = line.slice(end).trim();
    const [optionText, principal] = rest ? [line.slice(0, end), rest] : ['', line];
    if (/\s/.test(principal)) throw new Error(`line ${i + 1}: expected "[options] principal"`);
    const o = parseOptions(optionText);
    if ('why' in o) throw new Error(`line ${i + 1}: ${o.why}`);
    out.push({ line: i + 1, principal, options: o.options });
  });
  return out;
}

export class CertificateFiles {
  private readonly cas = new ParsedFileCache((d) => parseCaKeys(d.toString('utf8')));
  private readonly principalFiles = new ParsedFileCache((d) => parsePrincipals(d.toString('utf8')), { strict: true });
  private readonly revocations = new ParsedFileCache((d) => RevocationList.parse(d));

  constructor(readonly sources: CertificateSources) {}

  /** The trusted CA keys (by plain blob, hex); null when trustedUserCAKeys is not set. */
  trustedCAs(): FileRead<Map<string, CaKey>> | null {
    return this.sources.trustedUserCAKeys ? this.cas.read(this.sources.trustedUserCAKeys) : null;
  }

  /** The user's authorized principals; null when authorizedPrincipalsFile is not set. */
  principals(user: string): FileRead<PrincipalLine[]> | null {
    const t = this.sources.authorizedPrincipalsFile;
    if (!t) return null;
    if (!isSafeUserName(user)) return { ok: false, file: t, why: 'user name has characters holdfast does not accept' };
    return this.principalFiles.read(expandUserTemplate(t, user));
  }

  /** The revocation list; null when revokedKeys is not set. */
  revoked(): FileRead<RevocationList> | null {
    return this.sources.revokedKeys ? this.revocations.read(this.sources.revokedKeys) : null;
  }
}
