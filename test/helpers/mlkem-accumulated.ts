/**
 * CCTV's accumulated ML-KEM test (C2SP/CCTV ML-KEM/README.md): d, z, m and an invalid ciphertext
 * drawn from one SHAKE-128 stream over the empty string; ek, dk, ct, K and the implicit-rejection K
 * written to another; its first 32 bytes are the answer. With @noble/post-quantum's deterministic API.
 * `node dist/test/helpers/mlkem-accumulated.js 10000` (npm run kat:mlkem) prints the 10,000-test value.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const noble = (require('@noble/post-quantum/ml-kem.js') as {
  ml_kem768: {
    keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
    encapsulate(ek: Uint8Array, m: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
    decapsulate(ct: Uint8Array, dk: Uint8Array): Uint8Array;
  };
}).ml_kem768;

/** Final FIPS 203, 10,000 tests: BoringSSL's and LibreSSL's published value. */
export const FINAL_10000 = 'f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1';

export function accumulated(n: number): string {
  const draw = 32 + 32 + 32 + 1088;
  const rng = crypto.createHash('shake128', { outputLength: n * draw }).update('').digest();
  const out = crypto.createHash('shake128', { outputLength: 32 });
  let p = 0;
  const take = (k: number) => rng.subarray(p, (p += k));
  for (let i = 0; i < n; i++) {
    const k = noble.keygen(Buffer.concat([take(32), take(32)]));
    out.update(k.publicKey).update(k.secretKey);
    const e = noble.encapsulate(k.publicKey, take(32));
    if (!Buffer.from(noble.decapsulate(e.cipherText, k.secretKey)).equals(Buffer.from(e.sharedSecret))) throw new Error(`test ${i}: decapsulation disagrees`);
    out.update(e.cipherText).update(e.sharedSecret);
    out.update(noble.decapsulate(take(1088), k.secretKey));
  }
  return out.digest('hex');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 10_000);
  const t0 = performance.now();
  const got = accumulated(n);
  const ok = n !== 10_000 || got === FINAL_10000;
  console.log(`ML-KEM-768 accumulated, ${n} tests: ${got} (${((performance.now() - t0) / 1000).toFixed(1)} s)${n === 10_000 ? (ok ? ': final FIPS 203 value, as BoringSSL and LibreSSL publish it' : `: NOT ${FINAL_10000}`) : ''}`);
  process.exitCode = ok ? 0 : 1;
}
