/**
 * OpenSSH public keys and signatures on node:crypto alone: a wire-format key blob to a KeyObject,
 * an SSH signature blob checked against it, and the SHA-256 fingerprint `ssh-keygen -l` prints.
 * Ed25519, RSA (rsa-sha2-256/512; SHA-1 `ssh-rsa` signatures refused) and ECDSA P-256/384/521.
 * DSA and security-key types are not accepted. Used for certificates (src/ssh/certificate.ts) and
 * KRLs, where ssh2's parseKey cannot be trusted (it misreads certificates: ssh2 PR #1495).
 */
import crypto from 'node:crypto';
import { sshMpint, sshString, WireError, WireReader } from './wire.js';

export type PublicKeyType = 'ssh-ed25519' | 'ssh-rsa' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521';

export interface SshPublicKey {
  readonly type: PublicKeyType;
  /** The plain wire-format blob (what authorized_keys holds, base64-decoded). */
  readonly blob: Buffer;
  readonly key: crypto.KeyObject;
}

const CURVES = {
  'ecdsa-sha2-nistp256': { crv: 'P-256', id: 'nistp256', size: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { crv: 'P-384', id: 'nistp384', size: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { crv: 'P-521', id: 'nistp521', size: 66, hash: 'sha512' },
} as const;

/** OpenSSH's floor for RSA moduli (RSA_MIN_MODULUS_SIZE). */
const RSA_MIN_BITS = 1024;

const b64u = (b: Buffer) => b.toString('base64url');

export function isPublicKeyType(t: string): t is PublicKeyType {
  return t === 'ssh-ed25519' || t === 'ssh-rsa' || t in CURVES;
}

/**
 * Reads the key-specific fields of `type` (after the type string of a key, or after the nonce of a
 * certificate) and returns the key with its plain blob.
 */
export function readKeyFields(r: WireReader, type: string): SshPublicKey {
  if (type === 'ssh-ed25519') {
    const pk = r.bytes('ed25519 key');
    if (pk.length !== 32) throw new WireError(`ed25519 key of ${pk.length} bytes, not 32`);
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk) }, format: 'jwk' });
    return { type, blob: sshString(type, pk), key };
  }
  if (type === 'ssh-rsa') {
    const e = r.mpint('rsa e');
    const n = r.mpint('rsa n');
    const bits = n.length * 8 - Math.clz32(n[0] ?? 0) + 24;
    if (bits < RSA_MIN_BITS) throw new WireError(`RSA key of ${bits} bits (at least ${RSA_MIN_BITS})`);
    const key = crypto.createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' });
    return { type, blob: Buffer.concat([sshString(type), sshMpint(e), sshMpint(n)]), key };
  }
  if (type in CURVES) {
    const c = CURVES[type as keyof typeof CURVES];
    const id = r.text('curve name');
    if (id !== c.id) throw new WireError(`${type} key on curve ${id}`);
    const q = r.bytes('ecdsa point');
    if (q.length !== 1 + 2 * c.size || q[0] !== 4) throw new WireError(`${type} point is not an uncompressed ${c.crv} point`);
    const key = crypto.createPublicKey({ key: { kty: 'EC', crv: c.crv, x: b64u(q.subarray(1, 1 + c.size)), y: b64u(q.subarray(1 + c.size)) }, format: 'jwk' });
    return { type: type as PublicKeyType, blob: sshString(type, id, q), key };
  }
  throw new WireError(`key type ${type} is not supported (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521)`);
}

/** A plain public key blob (not a certificate). Throws WireError, or Error from node:crypto. */
export function publicKeyFromBlob(blob: Buffer): SshPublicKey {
  const r = new WireReader(blob);
  const type = r.text('key type');
  const k = readKeyFields(r, type);
  r.end('the public key');
  return k;
}

/** `SHA256:<base64 without padding>` of a plain key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export type SignatureCheck = { readonly ok: true; readonly algo: string } | { readonly ok: false; readonly why: string };

/** Checks an SSH signature blob (string algorithm, string signature) over `data` with `key`. */
export function verifySignature(key: SshPublicKey, data: Buffer, signatureBlob: Buffer): SignatureCheck {
  let algo: string;
  let sig: Buffer;
  try {
    const r = new WireReader(signatureBlob);
    algo = r.text('signature algorithm');
    sig = r.bytes('signature');
    r.end('the signature');
  } catch (err) {
    return { ok: false, why: `malformed signature: ${(err as Error).message}` };
  }
  try {
    switch (key.type) {
      case 'ssh-ed25519':
        if (algo !== 'ssh-ed25519') return mismatch(algo, key.type);
        return verdict(crypto.verify(null, data, key.key, sig), algo);
      case 'ssh-rsa':
        if (algo === 'ssh-rsa') return { ok: false, why: 'ssh-rsa (SHA-1) signature refused: rsa-sha2-256 or rsa-sha2-512 only' };
        if (algo !== 'rsa-sha2-256' && algo !== 'rsa-sha2-512') return mismatch(algo, key.type);
        return verdict(crypto.verify(algo === 'rsa-sha2-256' ? 'sha256' : 'sha512', data, key.key, sig), algo);
      default: {
        const c = CURVES[key.type];
        if (algo !== key.type) return mismatch(algo, key.type);
        const rs = new WireReader(sig);
        const rr = rs.mpint('ecdsa r');
        const ss = rs.mpint('ecdsa s');
        rs.end('the ecdsa signature');
        if (rr.length > c.size || ss.length > c.size) return { ok: false, why: 'ecdsa signature values too large' };
        const p1363 = Buffer.concat([Buffer.alloc(c.size - rr.length), rr, Buffer.alloc(c.size - ss.length), ss]);
        return verdict(crypto.verify(c.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, p1363), algo);
      }
    }
  } catch (err) {
    return { ok: false, why: `signature check failed: ${(err as Error).message}` };
  }
}

function mismatch(algo: string, type: string): SignatureCheck {
  return { ok: false, why: `a ${algo} signature from a ${type} key` };
}

function verdict(ok: boolean, algo: string): SignatureCheck {
  return ok ? { ok: true, algo } : { ok: false, why: `${algo} signature does not verify` };
}
