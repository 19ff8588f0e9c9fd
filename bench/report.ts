/** The benchmark's Markdown table (printed, written to bench/results/latest.md, shown in the README). */
import type { BenchResult, Row } from './bench.js';
import type { Stat } from './stats.js';

export interface Report extends BenchResult {
  readonly date: string;
  readonly machine: Record<string, string>;
  readonly config: Record<string, unknown>;
}

const digits = (unit: string) => (unit === 'ms' ? 2 : unit.startsWith('%') ? 3 : 1);

function cell(s: Stat | undefined, unit: string): string {
  if (!s) return '';
  const d = digits(unit);
  return s.n > 1 ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : s.median.toFixed(d);
}

function ratioCell(r: Row): string {
  if (!r.ratio) return '';
  return r.ratio.n > 1 ? `${r.ratio.median.toFixed(2)} (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)})` : r.ratio.median.toFixed(2);
}

/** A page (docs/performance.md) with `table` between its bench-table markers. */
export function withTable(readme: string, table: string): string {
  const start = '<!-- bench-table:start -->';
  const end = '<!-- bench-table:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) return readme;
  return `${readme.slice(0, i + start.length)}\n${table}\n${readme.slice(j)}`;
}

export function toMarkdown(r: Report): string {
  const m = r.machine;
  const lines = [
    `### holdfast vs OpenSSH sshd as the jump host (${r.date.slice(0, 10)})`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), Linux ${m.kernel}, Node ${m.node}, ${m.openssh}, cipher ${m.cipher}; everything on 127.0.0.1.`,
    'Cells: median (min–max) over the runs; ratio = holdfast / sshd, run by run.',
    '',
    '| figure | unit | holdfast | sshd | direct | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.figure}${row.note ? ` — ${row.note}` : ''} | ${row.unit} | ${cell(row.holdfast, row.unit)} | ${cell(row.sshd, row.unit)} | ${cell(row.direct, row.unit)} | ${ratioCell(row)} | ${row.target} | ${row.target.startsWith('(') ? '–' : row.met ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}
