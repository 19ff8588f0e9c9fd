/**
 * OpenSSH certificates (PROTOCOL.certkeys): the parser and the checks that do not depend on who
 * trusts the CA, all on node:crypto. Who trusts which CA for which user (trustedUserCAKeys,
 * cert-authority lines, principals) is src/ssh/user-ca.ts; revocation is src/ssh/krl.ts.
 *
 *   string type ("ssh-ed25519-cert-v01@openssh.com", ...)   string nonce   <key fields>
 *   uint64 serial   uint32 type (1 user, 2 host)   string key id   string valid principals
 *   uint64 valid after   uint64 valid before   string critical options   string extensions
 *   string reserved   string signature key (the CA)   string signature (over everything before it)
 */
import { inBlockList, parseSubnet } from '../routing/destination.js';
import { unmapIPv4 } from '../routing/canonical.js';
import { fingerprintSha256, isPublicKeyType, publicKeyFromBlob, readKeyFields, verifySignature, type SshPublicKey } from './public-key.js';
import { WireReader } from './wire.js';

export const CERT_SUFFIX = '-cert-v01@openssh.com';
/** valid_before meaning "forever" (ssh-keygen -V always). */
const FOREVER = 0xffffffffffffffffn;

export interface Certificate {
  /** The certificate's own type name, e.g. ssh-ed25519-cert-v01@openssh.com. */
  readonly type: string;
  /** The certified key (its plain blob: what `ssh-keygen -lf` fingerprints). */
  readonly key: SshPublicKey;
  readonly serial: bigint;
  readonly kind: 'user' | 'host';
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  readonly criticalOptions: ReadonlyMap<string, Buffer>;
  readonly extensions: ReadonlyMap<string, Buffer>;
  /** The CA's plain public key blob, and the key. */
  readonly caBlob: Buffer;
  readonly signedData: Buffer;
  readonly signature: Buffer;
  readonly blob: Buffer;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

/**
 * The plain key type a certificate (or a userauth algorithm naming one) is for:
 * `ssh-ed25519-cert-v01@openssh.com` -> ssh-ed25519, `rsa-sha2-256-cert-v01@openssh.com` -> ssh-rsa.
 * Undefined for a name that is not a certificate.
 */
export function certBaseType(algo: string): string | undefined {
  if (!algo.endsWith(CERT_SUFFIX)) return undefined;
  const base = algo.slice(0, -CERT_SUFFIX.length);
  return base === 'rsa-sha2-256' || base === 'rsa-sha2-512' ? 'ssh-rsa' : base;
}

/** Parses a certificate blob; throws CertificateError saying what is wrong. */
export function parseCertificate(blob: Buffer): Certificate {
  try {
    const r = new WireReader(blob);
    const type = r.text('certificate type');
    const base = certBaseType(type);
    if (!base || !isPublicKeyType(base) || type.startsWith('rsa-sha2-')) throw new CertificateError(`${type} is not a supported certificate type`);
    r.bytes('nonce');
    const key = readKeyFields(r, base);
    const serial = r.u64();
    const kindNo = r.u32();
    if (kindNo !== 1 && kindNo !== 2) throw new CertificateError(`certificate type ${kindNo} (1 user, 2 host)`);
    const keyId = r.text('key id');
    const principals: string[] = [];
    const pr = new WireReader(r.bytes('principals'));
    while (!pr.done) principals.push(pr.text('principal'));
    const validAfter = r.u64();
    const validBefore = r.u64();
    const criticalOptions = readOptions(r.bytes('critical options'), 'critical option');
    const extensions = readOptions(r.bytes('extensions'), 'extension');
    r.bytes('reserved');
    const caBlob = r.bytes('signature key');
    const signedData = r.since(0);
    const signature = r.bytes('signature');
    r.end('the certificate');
    return { type, key, serial, kind: kindNo === 1 ? 'user' : 'host', keyId, principals, validAfter, validBefore, criticalOptions, extensions, caBlob, signedData, signature, blob };
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    throw new CertificateError(`malformed certificate: ${(err as Error).message}`);
  }
}

/** Options and extensions: (string name, string data) pairs, names in order and each once. */
function readOptions(buf: Buffer, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const r = new WireReader(buf);
  let last = '';
  while (!r.done) {
    const name = r.text(`${what} name`);
    const data = r.bytes(`${what} data`);
    if (out.has(name) || name < last) throw new CertificateError(`${what} ${name} repeated or out of order`);
    out.set(name, data);
    last = name;
  }
  return out;
}

/** A refusal with the rule that refused (logged as `rule`). */
export type CertCheck = { readonly ok: true } | { readonly ok: false; readonly rule: string; readonly why: string };

const refuse = (rule: string, why: string): CertCheck => ({ ok: false, rule, why });

/** The critical options holdfast understands; any other makes the certificate unusable (as sshd). */
const KNOWN_CRITICAL = new Set(['force-command', 'source-address']);

/**
 * What holds whoever trusts the CA: a CA signature that verifies (not SHA-1), a user certificate,
 * within its validity, with principals, only known critical options, `source-address` matching the
 * client. Principals against the user and revocation are checked by the caller.
 */
export function checkCertificate(cert: Certificate, at: { readonly now: Date; readonly clientIp: string }): CertCheck {
  // Nothing in it means anything before the CA's signature is checked.
  let ca: SshPublicKey;
  try {
    ca = publicKeyFromBlob(cert.caBlob);
  } catch (err) {
    return refuse('ca-signature', `CA key unusable: ${(err as Error).message}`);
  }
  const sig = verifySignature(ca, cert.signedData, cert.signature);
  if (!sig.ok) return refuse('ca-signature', `CA signature: ${sig.why}`);
  if (cert.kind !== 'user') return refuse('certificate-type', 'a host certificate offered for a user login');
  const now = BigInt(Math.floor(at.now.getTime() / 1000));
  if (now < cert.validAfter) return refuse('not-yet-valid', `certificate valid from ${timeText(cert.validAfter)}`);
  if (cert.validBefore !== FOREVER && now >= cert.validBefore) return refuse('expired', `certificate expired at ${timeText(cert.validBefore)}`);
  if (cert.principals.length === 0) return refuse('principals', 'certificate lists no principals');
  for (const name of cert.criticalOptions.keys()) {
    if (!KNOWN_CRITICAL.has(name)) return refuse('critical-option', `unknown critical option ${name}`);
  }
  const src = sourceAddresses(cert);
  if (src === null) return refuse('source-address', 'malformed source-address critical option');
  if (src && !src.some((s) => s.test(unmapIPv4(at.clientIp)))) {
    return refuse('source-address', `client address ${at.clientIp} not in the certificate's source-address ${src.map((s) => s.text).join(',')}`);
  }
  return { ok: true };
}

/** A critical option's data: one string inside the data string. */
function optionString(data: Buffer): string | null {
  try {
    const r = new WireReader(data);
    const s = r.text('option value');
    r.end('the option');
    return s;
  } catch {
    return null;
  }
}

/** source-address as matchers; undefined when absent, null when malformed. */
function sourceAddresses(cert: Certificate): { text: string; test(ip: string): boolean }[] | undefined | null {
  const data = cert.criticalOptions.get('source-address');
  if (!data) return undefined;
  const text = optionString(data);
  if (!text) return null;
  const out: { text: string; test(ip: string): boolean }[] = [];
  for (const part of text.split(',')) {
    const net = parseSubnet(part.trim());
    if (!net) return null;
    out.push({ text: part.trim(), test: (ip) => inBlockList(net, ip) });
  }
  return out;
}

/** force-command's command, if any. */
export function forceCommand(cert: Certificate): string | undefined {
  const data = cert.criticalOptions.get('force-command');
  return data ? (optionString(data) ?? '') : undefined;
}

/** What the certificate lets its holder do, as key options (ANDed with the trust source's). */
export function certificatePermits(cert: Certificate): { portForwarding: boolean; pty: boolean; agentForwarding: boolean; command?: string } {
  const command = forceCommand(cert);
  return {
    portForwarding: cert.extensions.has('permit-port-forwarding'),
    pty: cert.extensions.has('permit-pty'),
    agentForwarding: cert.extensions.has('permit-agent-forwarding'),
    ...(command !== undefined ? { command } : {}),
  };
}

/** What auth-accepted / auth-failed say about a certificate. */
export function describeCertificate(cert: Certificate): { keyId: string; serial: string; principals: string[]; caFingerprint: string; fingerprint: string } {
  return {
    keyId: cert.keyId,
    serial: cert.serial.toString(),
    principals: [...cert.principals],
    caFingerprint: fingerprintSha256(cert.caBlob),
    fingerprint: fingerprintSha256(cert.key.blob),
  };
}

function timeText(t: bigint): string {
  const ms = Number(t) * 1000;
  return Number.isFinite(ms) && ms < 8.64e15 ? new Date(ms).toISOString() : t.toString();
}
