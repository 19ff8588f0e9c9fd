/**
 * Seeded mutations for the parsers that read an outsider's bytes before authentication (PROXY
 * headers, certificates): the same inputs on every run (raw-ssh.ts's seeded prng), so a failure can
 * be replayed from its index.
 */
export { prng } from './raw-ssh.js';

/**
 * One to three edits of `seed`: a bit flipped, a 32-bit length field overwritten (0, 1, 2^31-1,
 * 2^32-1, the blob's length), 1-8 random bytes inserted, 1-4 bytes deleted, or the tail cut off.
 */
export function mutate(seed: Buffer, random: () => number): Buffer {
  let b = Buffer.from(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const edits = 1 + pick(3);
  for (let i = 0; i < edits && b.length > 0; i++) {
    const r = random();
    const at = pick(b.length);
    if (r < 0.45) b[at] = b[at]! ^ (1 << pick(8));
    else if (r < 0.6 && b.length >= 4) b.writeUInt32BE([0, 1, 0x7fffffff, 0xffffffff, b.length][pick(5)]!, Math.min(at, b.length - 4));
    else if (r < 0.75) b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + pick(8) }, () => pick(256))), b.subarray(at)]);
    else if (r < 0.9) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(4))]);
    else b = b.subarray(0, at);
  }
  return b;
}
