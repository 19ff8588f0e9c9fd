/**
 * `hostCertificates`: holdfast presents an OpenSSH host certificate (`ssh-keygen -s CA -h`) for its
 * ed25519, ECDSA or RSA host key, so a client with `@cert-authority` for the CA in known_hosts connects without a
 * prompt. ssh2 takes a parsed key object: the certified key is the host key with its type and public
 * blob replaced by the certificate's (signing is the host key's own). The ssh2 change this needs is in
 * patches/ssh2+1.17.0.patch: the host signature made, converted and labelled as the key's algorithm,
 * not the certificate's; and an RSA certificate offered as rsa-sha2-512/256-cert-v01@openssh.com.
 */
import fs from 'node:fs';
import { utils, type ParsedKey } from './ssh2.js';
import { parseCertificate, type Certificate } from './certificate.js';
import { fingerprintSha256 } from './public-key.js';

export type HostCertificate = { readonly ok: true; readonly cert: Certificate; readonly file: string } | { readonly ok: false; readonly why: string };

/**
 * The certificates holdfast can present. An RSA certificate (ssh-keygen names it ssh-rsa-cert-v01) is
 * offered as rsa-sha2-512/256-cert-v01@openssh.com, signed with SHA-2 (holdfast never offers SHA-1
 * ssh-rsa). DSA is gone from OpenSSH; security-key (sk-) types cannot be host keys.
 */
export const HOST_CERT_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'].map((t) => `${t}-cert-v01@openssh.com`);

/** Reads `file` (one "type base64 [comment]" line) as an ed25519, ECDSA or RSA host certificate. */
export function readHostCertificate(file: string): HostCertificate {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, why: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const [type, b64] = text.trim().split(/\s+/);
  if (!type || !b64) return { ok: false, why: `${file} is not a certificate ("type base64 [comment]")` };
  if (!type.endsWith('-cert-v01@openssh.com')) return { ok: false, why: `${file} is a plain ${type} key, not a certificate: sign the host key's .pub with ssh-keygen -s CA -h` };
  if (!HOST_CERT_TYPES.includes(type)) return { ok: false, why: `${file} is a ${type}: holdfast presents ed25519, ECDSA and RSA host certificates (${HOST_CERT_TYPES.join(', ')})` };
  let cert: Certificate;
  try {
    cert = parseCertificate(Buffer.from(b64, 'base64'));
  } catch (err) {
    return { ok: false, why: `${file}: ${(err as Error).message}` };
  }
  if (cert.kind !== 'host') return { ok: false, why: `${file} is a user certificate; sign the host key with ssh-keygen -h` };
  return { ok: true, cert, file };
}

/** The private host key (OpenSSH file contents) whose public half the certificate certifies, if any. */
export function certifies(cert: Certificate, hostKey: Buffer): boolean {
  const parsed = utils.parseKey(hostKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return !!key && !(key instanceof Error) && key.getPublicSSH().equals(cert.key.blob);
}

/** The host key presented as its certificate (for ssh2's hostKeys). */
export function certifiedHostKey(hostKey: Buffer, cert: Certificate): ParsedKey {
  const parsed = utils.parseKey(hostKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error('host key unreadable');
  return Object.create(key, {
    type: { value: cert.type },
    getPublicSSH: { value: () => cert.blob },
  }) as ParsedKey;
}

/** For `check` and the start-up line: "<file>: key SHA256:…, CA SHA256:…, principals a,b, valid …". */
export function describeHostCertificate(c: { cert: Certificate; file: string }): string {
  const forever = c.cert.validBefore === 0xffffffffffffffffn;
  const until = forever ? 'forever' : `until ${new Date(Number(c.cert.validBefore) * 1000).toISOString()}`;
  return `${c.file}: key ${fingerprintSha256(c.cert.key.blob)}, CA ${fingerprintSha256(c.cert.caBlob)}, principals ${c.cert.principals.join(',') || '(any)'}, valid ${until}`;
}
