/**
 * A certificate login, decided as sshd decides it (auth2-pubkey.c, PROTOCOL.certkeys): the CA must
 * be trusted for this user, by a `cert-authority` line in the user's authorized_keys (its
 * principals="..." and other options apply) or by `trustedUserCAKeys` (with `authorizedPrincipalsFile`,
 * one of the user's principal lines must be in the certificate; without it, the user name must be);
 * the certificate must hold (src/ssh/certificate.ts), be unrevoked, and the user's signature must
 * verify with the certified key. Every refusal names its rule. Pure apart from the files read.
 */
import { fromAllows, optionsExpired, type KeyOptions, type LoginKey } from '../ssh/authorized-keys.js';
import type { KeyLookup } from '../ssh/auth.js';
import { certificatePermits, checkCertificate, describeCertificate, parseCertificate, CERT_SUFFIX, type Certificate } from '../ssh/certificate.js';
import type { CertificateFiles } from '../ssh/user-ca.js';
import { fingerprintSha256, verifySignature } from '../ssh/public-key.js';

export type CertificateFacts = ReturnType<typeof describeCertificate>;

export type CertLogin =
  | { readonly ok: true; readonly entry: LoginKey; readonly file: string }
  | { readonly ok: false; readonly rule: string; readonly why: string };

export type CertVerdict =
  | { readonly kind: 'key-ok' }
  | { readonly kind: 'accept'; readonly entry: LoginKey; readonly file: string }
  | { readonly kind: 'fail'; readonly rule: string; readonly why: string; readonly certificate?: CertificateFacts };

/** The certificate type a userauth algorithm names (rsa-sha2-256-cert-v01@… is an ssh-rsa certificate). */
function certTypeOf(algo: string): string {
  return algo.startsWith('rsa-sha2-256-') || algo.startsWith('rsa-sha2-512-') ? `ssh-rsa${CERT_SUFFIX}` : algo;
}

export function certificateVerdict(
  attempt: { readonly user: string; readonly algo: string; readonly data: Buffer; readonly signature?: Buffer | undefined; readonly blob?: Buffer | undefined },
  lookup: KeyLookup,
  files: CertificateFiles,
  at: { readonly clientIp: string; readonly now: Date },
): CertVerdict {
  let cert: Certificate;
  try {
    cert = parseCertificate(attempt.data);
  } catch (err) {
    return { kind: 'fail', rule: 'certificate-malformed', why: (err as Error).message };
  }
  const facts = describeCertificate(cert);
  if (cert.type !== certTypeOf(attempt.algo)) return { kind: 'fail', rule: 'certificate-malformed', why: `a ${cert.type} offered as ${attempt.algo}`, certificate: facts };
  const login = certificateLogin(cert, attempt.user, lookup, files, at);
  if (!login.ok) return { kind: 'fail', rule: login.rule, why: login.why, certificate: facts };
  if (!attempt.signature) return { kind: 'key-ok' };
  const sig = attempt.blob ? verifySignature(cert.key, attempt.blob, attempt.signature) : { ok: false as const, why: 'no signed data' };
  if (!sig.ok) return { kind: 'fail', rule: 'signature', why: sig.why, certificate: facts };
  return { kind: 'accept', entry: login.entry, file: login.file };
}

/** Everything but the user's signature: also what a reload re-checks for a live session. */
export function certificateLogin(cert: Certificate, user: string, lookup: KeyLookup, files: CertificateFiles, at: { readonly clientIp: string; readonly now: Date }): CertLogin {
  const caHex = cert.caBlob.toString('hex');
  const caFp = fingerprintSha256(cert.caBlob);
  const lines = lookup.ok ? lookup.keys.filter((k) => k.certAuthority && k.publicSSH.equals(cert.caBlob)) : [];
  const cas = files.trustedCAs();
  const trusted = cas?.ok ? cas.value.get(caHex) : undefined;
  if (lines.length === 0 && !trusted) {
    const where = [lookup.ok ? `no cert-authority line in ${lookup.file}` : null, cas ? (cas.ok ? `not in trustedUserCAKeys ${cas.file}` : `trustedUserCAKeys unusable: ${cas.why}`) : null].filter(Boolean);
    return { ok: false, rule: 'untrusted-ca', why: `CA ${caFp} is not trusted (${where.join('; ') || 'no trustedUserCAKeys, no cert-authority line'})` };
  }
  const holds = checkCertificate(cert, at);
  if (!holds.ok) return holds;

  let why = `user ${user} is not among the certificate's principals (${cert.principals.join(', ')})`;
  let chosen: { principal: string; options: KeyOptions; file: string; line: number; trustedBy: string } | undefined;
  for (const l of lines) {
    const file = lookup.ok ? lookup.file : '';
    if (optionsExpired(l.options, at.now)) why = `cert-authority line ${l.line} expired (expiry-time)`;
    else if (!fromAllows(l.options, at.clientIp)) why = `source address ${at.clientIp} not allowed by from= (cert-authority line ${l.line})`;
    else {
      const allowed = l.certAuthority?.principals;
      const principal = allowed ? cert.principals.find((p) => allowed.includes(p)) : cert.principals.includes(user) ? user : undefined;
      if (principal !== undefined) {
        chosen = { principal, options: l.options, file, line: l.line, trustedBy: `${file}:${l.line} (cert-authority)` };
        break;
      }
      why = allowed ? `none of the certificate's principals (${cert.principals.join(', ')}) is in principals="${allowed.join(',')}" (line ${l.line})` : why;
    }
  }
  if (!chosen && trusted && cas?.ok) {
    const pf = files.principals(user);
    const trustedBy = `trustedUserCAKeys ${cas.file}:${trusted.line}`;
    if (!pf) {
      if (cert.principals.includes(user)) chosen = { principal: user, options: ALL, file: cas.file, line: 0, trustedBy };
    } else if (!pf.ok) why = `authorizedPrincipalsFile: ${pf.why}`;
    else {
      const hit = pf.value.find((p) => cert.principals.includes(p.principal) && fromAllows(p.options, at.clientIp) && !optionsExpired(p.options, at.now));
      if (hit) chosen = { principal: hit.principal, options: hit.options, file: pf.file, line: hit.line, trustedBy };
      else why = `none of the certificate's principals (${cert.principals.join(', ')}) is allowed by ${pf.file}`;
    }
  }
  if (!chosen) return { ok: false, rule: 'principal', why };

  const rv = files.revoked();
  if (rv && !rv.ok) return { ok: false, rule: 'revoked-keys', why: `revokedKeys unusable, so every key is refused: ${rv.why}` };
  const revoked = rv?.value.check(cert.key.blob, cert);
  if (revoked) return { ok: false, rule: 'revoked', why: revoked };

  const permits = certificatePermits(cert);
  const o = chosen.options;
  if (permits.command !== undefined && o.command !== undefined && permits.command !== o.command) {
    return { ok: false, rule: 'force-command', why: 'the certificate and the key options force different commands' };
  }
  const command = permits.command ?? o.command;
  const options: KeyOptions = {
    ...o,
    portForwarding: o.portForwarding && permits.portForwarding,
    pty: o.pty && permits.pty,
    agentForwarding: o.agentForwarding && permits.agentForwarding,
    ...(command !== undefined ? { command } : {}),
  };
  const f = describeCertificate(cert);
  return {
    ok: true,
    file: chosen.file,
    entry: {
      line: chosen.line,
      type: cert.type,
      publicSSH: cert.blob,
      comment: cert.keyId,
      options,
      certificate: { keyId: f.keyId, serial: f.serial, principal: chosen.principal, caFingerprint: f.caFingerprint, fingerprint: f.fingerprint, trustedBy: chosen.trustedBy },
    },
  };
}

/** No restriction from the trust source (trustedUserCAKeys without a principals file). */
const ALL: KeyOptions = { portForwarding: true, pty: true, agentForwarding: true };
