/**
 * ML-KEM-768 (FIPS 203), as the ssh2 patch's lib/protocol/mlkem.js provides it for
 * mlkem768x25519-sha256: node:crypto (Node >= 24.7) or @noble/post-quantum. Known answers from C2SP's
 * CCTV vectors (test/fixtures/mlkem/README.md), the modulus check on every invalid encapsulation key
 * of CCTV's list, key generation against the final standard's accumulated value, and, where Node has
 * ML-KEM, node:crypto and @noble/post-quantum against each other on the same seeds.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { ROOT } from '../helpers/holdfast.js';
import { accumulated } from '../helpers/mlkem-accumulated.js';

const require = createRequire(import.meta.url);
interface Kem {
  source: string;
  keygen(): { publicKey: Uint8Array; secretKey: unknown };
  encapsulate(ek: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(ct: Uint8Array, secretKey: unknown): Uint8Array;
}
interface Noble {
  keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(ek: Uint8Array, m: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(ct: Uint8Array, dk: Uint8Array): Uint8Array;
}
const kem = require('ssh2/lib/protocol/mlkem.js') as Kem | null;
const noble = (require('@noble/post-quantum/ml-kem.js') as { ml_kem768: Noble }).ml_kem768;
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'mlkem');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const nodeHasMlKem = typeof (crypto as { encapsulate?: unknown }).encapsulate === 'function';

function vector(file: string): Record<string, Buffer> {
  const lines = fs.readFileSync(path.join(FIXTURES, file), 'utf8').trim().split('\n');
  return Object.fromEntries(lines.map((l) => l.split(' = ')).map(([k, v]) => [k!, Buffer.from(v!, 'hex')]));
}

/** The decapsulation key in the form the implementation in use takes (node:crypto: PKCS#8, expandedKey). */
function secretKeyOf(dk: Buffer): unknown {
  if (kem?.source !== 'node:crypto') return dk;
  const der = Buffer.concat([Buffer.from('30820978020100300b06096086480165030404020482096404820960', 'hex'), dk]);
  return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

describe('ML-KEM-768 for mlkem768x25519-sha256', function () {
  it('an implementation is there, node:crypto where Node has one', function () {
    expect(kem, 'lib/protocol/mlkem.js').to.not.equal(null);
    expect(kem!.source).to.equal(nodeHasMlKem ? 'node:crypto' : '@noble/post-quantum');
  });

  it('decapsulation known answers (CCTV strcmp and unlucky-sampling vectors)', function () {
    for (const file of ['strcmp-768.txt', 'unluckysample-768.txt']) {
      const v = vector(file);
      expect(hex(kem!.decapsulate(v.c!, secretKeyOf(v.dk!))), file).to.equal(hex(v.K!));
      expect(hex(noble.decapsulate(v.c!, v.dk!)), `${file} (@noble/post-quantum)`).to.equal(hex(v.K!));
    }
  });

  it('encapsulation known answer (CCTV unlucky sampling: ek and m give c and K)', function () {
    const v = vector('unluckysample-768.txt');
    const r = noble.encapsulate(v.ek!, v.m!);
    expect(hex(r.cipherText)).to.equal(hex(v.c!));
    expect(hex(r.sharedSecret)).to.equal(hex(v.K!));
    // The implementation in use (random m): its ciphertext decapsulates to its secret with the vector's key.
    const mine = kem!.encapsulate(v.ek!);
    expect(hex(kem!.decapsulate(mine.cipherText, secretKeyOf(v.dk!)))).to.equal(hex(mine.sharedSecret));
  });

  it("the modulus check: every one of CCTV's invalid encapsulation keys is refused", function () {
    const keys = zlib.gunzipSync(fs.readFileSync(path.join(FIXTURES, 'modulus-768.txt.gz'))).toString().trim().split('\n');
    expect(keys.length).to.be.greaterThan(700);
    let refused = 0;
    for (const k of keys) {
      try {
        kem!.encapsulate(Buffer.from(k, 'hex'));
      } catch {
        refused++;
      }
    }
    expect(refused, `of ${keys.length}`).to.equal(keys.length);
  });

  it('key generation: 100 accumulated seeds (SHAKE-128 stream of CCTV) match the final FIPS 203 run of this implementation', function () {
    this.timeout(20_000);
    // The 10,000-test run (`npm run kat:mlkem`, ~75 s) gives f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1,
    // BoringSSL's and LibreSSL's published value for final FIPS 203 (CCTV's f7db26... is the ipd's).
    expect(accumulated(100)).to.equal('8d65b902f28edc683cebee2872962fd165a4d197c9e24ec74caa4470270df0b7');
  });

  it('node:crypto and @noble/post-quantum agree: same seeds, same encapsulation keys; each decapsulates the other', function () {
    if (!nodeHasMlKem) {
      console.log(`    SKIPPED: Node ${process.version} has no ML-KEM in node:crypto (>= 24.7 has): @noble/post-quantum alone is in use`);
      return this.skip();
    }
    const rng = crypto.createHash('shake128', { outputLength: 64 * 50 }).update('holdfast').digest();
    for (let i = 0; i < 50; i++) {
      const seed = rng.subarray(64 * i, 64 * (i + 1));
      const der = Buffer.concat([Buffer.from('3054020100300b060960864801650304040204428040', 'hex'), seed]);
      const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      const ekNode = crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' }).subarray(-1184);
      const n = noble.keygen(seed);
      expect(hex(ekNode), `seed ${i}`).to.equal(hex(n.publicKey));
      const toNoble = kem!.encapsulate(n.publicKey);
      expect(hex(noble.decapsulate(toNoble.cipherText, n.secretKey))).to.equal(hex(toNoble.sharedSecret));
      const toNode = noble.encapsulate(n.publicKey, rng.subarray(0, 32));
      expect(hex(kem!.decapsulate(toNode.cipherText, priv))).to.equal(hex(toNode.sharedSecret));
    }
  });
});
