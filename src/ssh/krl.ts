/**
 * `revokedKeys`: an OpenSSH key revocation list (PROTOCOL.krl, what `ssh-keygen -k` writes: serials,
 * serial ranges and bitmaps and key IDs per CA, explicit keys, SHA-1 and SHA-256 fingerprints) or a
 * plain list of public keys, as sshd's RevokedKeys takes either. Revoked means refused: the user's
 * key, the certificate (by serial or key ID under its CA, or under "any CA"), and the CA key itself.
 * KRL signature sections are not checked (sshd does not either); parsing stops at the first one.
 */
import crypto from 'node:crypto';
import { CERT_SUFFIX, parseCertificate, type Certificate } from './certificate.js';
import { WireError, WireReader } from './wire.js';

const MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');

interface CertSection {
  /** The CA's plain key blob, or null for "any CA". */
  readonly ca: Buffer | null;
  readonly serials: Set<bigint>;
  readonly ranges: [bigint, bigint][];
  readonly bitmaps: { offset: bigint; bits: Buffer }[];
  readonly keyIds: Set<string>;
}

export class RevocationList {
  private readonly keys = new Set<string>();
  private readonly sha1 = new Set<string>();
  private readonly sha256 = new Set<string>();
  private readonly certs: CertSection[] = [];
  /** What the file held, for `check` and the log. */
  readonly summary = { format: 'keys' as 'krl' | 'keys', keys: 0, fingerprints: 0, serials: 0, keyIds: 0, cas: 0 };

  /** Why this login is revoked, or null. `key` is the plain key blob (a certificate's certified key). */
  check(key: Buffer, cert?: Certificate): string | null {
    const own = this.keyRevoked(key);
    if (own) return `the key is revoked (${own})`;
    if (!cert) return null;
    const ca = this.keyRevoked(cert.caBlob);
    if (ca) return `the certificate's CA key is revoked (${ca})`;
    for (const s of this.certs) {
      if (s.ca && !s.ca.equals(cert.caBlob)) continue;
      const serial = cert.serial;
      if (s.serials.has(serial) || s.ranges.some(([lo, hi]) => serial >= lo && serial <= hi) || s.bitmaps.some((b) => bitSet(b, serial))) {
        return `certificate serial ${serial} is revoked${s.ca ? '' : ' (for any CA)'}`;
      }
      if (s.keyIds.has(cert.keyId)) return `certificate key ID ${JSON.stringify(cert.keyId)} is revoked${s.ca ? '' : ' (for any CA)'}`;
    }
    return null;
  }

  private keyRevoked(blob: Buffer): string | null {
    if (this.keys.has(blob.toString('hex'))) return 'listed';
    if (this.sha256.has(crypto.createHash('sha256').update(blob).digest('hex'))) return 'SHA-256 fingerprint listed';
    if (this.sha1.has(crypto.createHash('sha1').update(blob).digest('hex'))) return 'SHA-1 fingerprint listed';
    return null;
  }

  /** Parses a KRL or a list of public keys; throws Error saying what is wrong. */
  static parse(data: Buffer): RevocationList {
    const list = new RevocationList();
    if (data.subarray(0, MAGIC.length).equals(MAGIC)) list.readKrl(data);
    else list.readKeyList(data.toString('utf8'));
    return list;
  }

  private readKeyList(text: string): void {
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const [type, b64] = line.split(/\s+/);
      const blob = b64 ? Buffer.from(b64, 'base64') : undefined;
      if (!blob || blob.length < 8 || blob.toString('base64') !== b64!.replace(/=*$/, (m) => m)) throw new Error(`line ${i + 1} is not a public key`);
      // A certificate line revokes the key it certifies, and so that key and every certificate of
      // it, as sshd's RevokedKeys does (sshkey_in_file compares the public key, not the certificate).
      this.keys.add((type!.endsWith(CERT_SUFFIX) ? certifiedKey(blob, i + 1) : blob).toString('hex'));
      this.summary.keys++;
    });
  }

  private readKrl(data: Buffer): void {
    this.summary.format = 'krl';
    try {
      const r = new WireReader(data.subarray(MAGIC.length));
      const version = r.u32();
      if (version !== 1) throw new Error(`KRL format version ${version} (1 expected)`);
      r.u64(); // krl_version
      r.u64(); // generated_date
      r.u64(); // flags
      r.bytes('reserved');
      r.bytes('comment');
      while (!r.done) {
        const type = r.byte();
        const body = new WireReader(r.bytes('section'));
        if (type === 4) break; // signatures: the rest of the file
        if (type === 1) this.readCertSection(body);
        else if (type === 2) while (!body.done) this.add(this.keys, body.bytes('revoked key').toString('hex'), 'keys');
        else if (type === 3) while (!body.done) this.add(this.sha1, body.bytes('SHA-1 hash').toString('hex'), 'fingerprints');
        else if (type === 5) while (!body.done) this.add(this.sha256, body.bytes('SHA-256 hash').toString('hex'), 'fingerprints');
        else throw new Error(`unknown KRL section type ${type}`);
      }
    } catch (err) {
      throw new Error(err instanceof WireError ? `malformed KRL: ${err.message}` : (err as Error).message);
    }
  }

  private readCertSection(r: WireReader): void {
    const ca = r.bytes('CA key');
    r.bytes('reserved');
    const s: CertSection = { ca: ca.length ? Buffer.from(ca) : null, serials: new Set(), ranges: [], bitmaps: [], keyIds: new Set() };
    this.summary.cas++;
    while (!r.done) {
      const type = r.byte();
      const body = new WireReader(r.bytes('certificate section'));
      if (type === 0x20) while (!body.done) this.add(s.serials, body.u64(), 'serials');
      else if (type === 0x21) {
        const lo = body.u64();
        const hi = body.u64();
        if (lo > hi) throw new Error(`KRL serial range ${lo}-${hi} is inverted`);
        s.ranges.push([lo, hi]);
        this.summary.serials++;
      } else if (type === 0x22) {
        s.bitmaps.push({ offset: body.u64(), bits: Buffer.from(body.mpint('serial bitmap')) });
        this.summary.serials++;
      } else if (type === 0x23) while (!body.done) this.add(s.keyIds, body.text('key ID'), 'keyIds');
      else throw new Error(`unknown KRL certificate section type 0x${type.toString(16)}`);
      // Every subsection read to its end: bytes left over (a second range in a range subsection) would
      // be revocations silently skipped, i.e. failing open. OpenSSH refuses such a KRL too.
      body.end('the certificate section');
    }
    this.certs.push(s);
  }

  private add<T>(set: Set<T>, v: T, count: 'keys' | 'fingerprints' | 'serials' | 'keyIds'): void {
    set.add(v);
    this.summary[count]++;
  }
}

/** The plain key a certificate line of a key list certifies. */
function certifiedKey(blob: Buffer, line: number): Buffer {
  try {
    return parseCertificate(blob).key.blob;
  } catch (err) {
    throw new Error(`line ${line} is a certificate holdfast cannot read (${(err as Error).message})`);
  }
}

/** Bit (serial - offset) of an mpint bitmap, least significant bit first. */
function bitSet(b: { offset: bigint; bits: Buffer }, serial: bigint): boolean {
  if (serial < b.offset) return false;
  const i = serial - b.offset;
  const byte = BigInt(b.bits.length) - 1n - i / 8n;
  if (byte < 0n) return false;
  return (b.bits[Number(byte)]! & (1 << Number(i % 8n))) !== 0;
}
