/**
 * One authentication attempt -> a verdict, as sshd decides it: public keys only; the first "none"
 * (how every client asks which methods exist) is not a failure; SHA-1 `ssh-rsa` is refused (OpenSSH
 * refuses it since 8.8); the key must be in the user's authorized_keys with its from= and
 * expiry-time satisfied; a query without a signature gets "this key would do" (PK_OK, RFC 4252 §7);
 * a signature must verify. No connection here: unit-tested in test/unit/auth-verdict.test.ts.
 */
import { matchOfferedKey, signatureValid, type KeyLookup } from '../ssh/auth.js';
import type { LoginKey } from '../ssh/authorized-keys.js';
import { certBaseType, parseCertificate } from '../ssh/certificate.js';
import type { CertificateFiles } from '../ssh/user-ca.js';
import { certificateLogin, certificateVerdict, type CertificateFacts } from './cert-login.js';

export interface AuthAttempt {
  readonly method: string;
  readonly user: string;
  readonly key?: { readonly algo: string; readonly data: Buffer } | undefined;
  /** The hash of the signature algorithm asked for (rsa-sha2-256 -> sha256); undefined for ssh-rsa. */
  readonly hashAlgo?: string | undefined;
  readonly signature?: Buffer | undefined;
  /** The data the signature covers (session id + request). */
  readonly blob?: Buffer | undefined;
}

export interface AuthSituation {
  /** The client already sent its one free "none". */
  readonly sawNone: boolean;
  readonly clientIp: string;
  readonly now: Date;
}

export type AuthVerdict =
  /** The first "none": answer with the methods; not counted. */
  | { readonly kind: 'methods' }
  /** `rule`: which rule refused (certificates and revocation); `certificate`: what the offered one says. */
  | { readonly kind: 'fail'; readonly why: string; readonly rule?: string; readonly certificate?: CertificateFacts }
  /** The key would do: the client signs next. */
  | { readonly kind: 'key-ok' }
  | { readonly kind: 'accept'; readonly entry: LoginKey; readonly file: string };

export function authVerdict(a: AuthAttempt, keys: { lookup(user: string): KeyLookup }, at: AuthSituation, certs?: CertificateFiles): AuthVerdict {
  if (a.method !== 'publickey' || !a.key) {
    if (a.method === 'none' && !at.sawNone) return { kind: 'methods' };
    return { kind: 'fail', why: `${a.method} authentication is not offered` };
  }
  if (certBaseType(a.key.algo)) {
    if (!certs) return { kind: 'fail', rule: 'certificate', why: 'certificates are not configured' };
    const v = certificateVerdict({ user: a.user, algo: a.key.algo, data: a.key.data, signature: a.signature, blob: a.blob }, keys.lookup(a.user), certs, at);
    return v.kind === 'fail' ? { kind: 'fail', why: v.why, rule: v.rule, ...(v.certificate ? { certificate: v.certificate } : {}) } : v;
  }
  if (a.key.algo === 'ssh-rsa' && a.hashAlgo !== 'sha256' && a.hashAlgo !== 'sha512') {
    return { kind: 'fail', why: 'ssh-rsa (SHA-1) signatures are refused; the client must use rsa-sha2-256 or rsa-sha2-512' };
  }
  const found = keys.lookup(a.user);
  if (!found.ok) return { kind: 'fail', why: found.why };
  const match = matchOfferedKey(found.keys, a.key, at.clientIp, at.now);
  if (!match.ok) return { kind: 'fail', why: match.why };
  const revoked = revocation(certs, a.key.data);
  if (revoked) return { kind: 'fail', rule: revoked.rule, why: revoked.why };
  if (!a.signature) return { kind: 'key-ok' };
  if (!a.blob || !signatureValid(match.entry, a.blob, a.signature, a.hashAlgo)) return { kind: 'fail', why: 'signature did not verify' };
  return { kind: 'accept', entry: match.entry, file: found.file };
}

/**
 * A reload: does the key that logged a live session in still authorize it (still in the user's
 * authorized_keys, not expired, its from= still matching, not revoked; a certificate: its CA still
 * trusted for this user, still valid, not revoked)? The entry in force now (its options may have
 * changed), or why not.
 */
export function reauthorize(
  keys: { lookup(user: string): KeyLookup },
  user: string,
  key: LoginKey,
  clientIp: string,
  now: Date,
  certs?: CertificateFiles,
): { readonly ok: true; readonly entry: LoginKey } | { readonly ok: false; readonly why: string } {
  const found = keys.lookup(user);
  if (key.certificate) {
    if (!certs) return { ok: false, why: 'certificates are no longer configured' };
    const r = certificateLogin(parseCertificate(key.publicSSH), user, found, certs, { clientIp, now });
    return r.ok ? r : { ok: false, why: `${r.rule}: ${r.why}` };
  }
  if (!found.ok) return { ok: false, why: found.why };
  const match = matchOfferedKey(found.keys, { algo: key.type, data: key.publicSSH }, clientIp, now);
  if (!match.ok) return { ok: false, why: `${found.file}: ${match.why}` };
  const revoked = revocation(certs, key.publicSSH);
  return revoked ? { ok: false, why: `${revoked.rule}: ${revoked.why}` } : match;
}

/** revokedKeys against a plain key: why it is refused, or null. */
function revocation(certs: CertificateFiles | undefined, blob: Buffer): { rule: string; why: string } | null {
  const rv = certs?.revoked();
  if (!rv) return null;
  if (!rv.ok) return { rule: 'revoked-keys', why: `revokedKeys unusable, so every key is refused: ${rv.why}` };
  const why = rv.value.check(blob);
  return why ? { rule: 'revoked', why } : null;
}
