/**
 * `npm run bench:profile`: a CPU profile of holdfast moving bulk data through ssh -J (both
 * directions), for finding what limits throughput. Writes holdfast's .cpuprofile (open it in Chrome
 * DevTools or speedscope) and prints the functions with the most self time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startLab } from './lab.js';
import { bulk, sha256, writeRandomFile, type Path } from './measure.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

async function main(): Promise<void> {
  const profDir = path.resolve(process.env.PROFILE_DIR ?? 'bench/results/profile');
  fs.rmSync(profDir, { recursive: true, force: true });
  fs.mkdirSync(profDir, { recursive: true });
  const lab = await startLab({ holdfastNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  const mib = Number(process.env.PROFILE_MIB ?? 256);
  try {
    const file = path.join(lab.dir, 'p.bin');
    writeRandomFile(file, mib * 1024 * 1024);
    const hash = await sha256(file);
    const hf: Path = { kind: 'jump', jump: lab.jumps.holdfast };
    for (const dir of ['up', 'down'] as const) {
      for (let i = 0; i < 2; i++) {
        const s = await bulk(lab, hf, dir, file, hash);
        process.stderr.write(`${dir} ${(mib / s).toFixed(1)} MiB/s\n`);
      }
    }
  } finally {
    await lab.stop();
  }
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const prof = JSON.parse(fs.readFileSync(path.join(profDir, file), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<string, number>();
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  let total = 0;
  for (const [id, c] of counts) {
    const n = byId.get(id)!;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${n.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + c);
    total += c;
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  process.stdout.write(`profile: ${path.join(profDir, file)} (${total} samples)\n`);
  for (const [k, c] of top) process.stdout.write(`${((100 * c) / total).toFixed(1).padStart(5)} %  ${k}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
