/** A config fault with its place in the file. Printed as `FILE:LINE:COL: path: message`. */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted key path such as `routes[1].to[0]`; empty for the document itself. */
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
    super(sorted.map(formatProblem).join('\n'));
    this.problems = sorted;
    this.name = 'ConfigError';
  }
}
