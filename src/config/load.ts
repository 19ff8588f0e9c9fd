/**
 * Loading a config: YAML (with positions) -> schema -> semantic checks -> frozen ResolvedConfig.
 * `serve` and `check` share this path, so what `check` accepts is exactly what `serve` runs.
 * Every problem carries FILE:LINE:COL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigSchema, type ConfigParsed } from './schema.js';
import { type ConfigProblem, ConfigError, formatKeyPath } from './errors.js';
import { EMBEDDED_DEFAULT_NAME, EMBEDDED_DEFAULT_YAML } from './embedded-default.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';

export interface LoadedConfig {
  readonly config: ResolvedConfig;
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
}

/** Loads FILE, or the embedded default when file is undefined. Throws ConfigError. */
export function loadConfig(file: string | undefined, opts: LoadOptions = {}): LoadedConfig {
  if (file === undefined) {
    return loadConfigText(EMBEDDED_DEFAULT_YAML, { displayName: EMBEDDED_DEFAULT_NAME, baseDir: process.cwd(), embedded: true, ...opts });
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? err);
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read config: ${why}` }]);
  }
  return loadConfigText(text, { displayName: file, baseDir: path.dirname(path.resolve(file)), embedded: false, ...opts });
}

export interface TextSource extends LoadOptions {
  readonly displayName: string;
  /** Folder that relative paths in the config are resolved against. */
  readonly baseDir: string;
  readonly embedded: boolean;
}

export function loadConfigText(text: string, src: TextSource): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, strict: true, prettyErrors: true });
  const at = (offset: number | undefined, keyPath: readonly PropertyKey[], message: string): ConfigProblem => {
    const { line, col } = offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset);
    return { file: src.displayName, line, col, path: formatKeyPath(keyPath), message };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        // yaml appends " at line L, column C:" and a snippet; we print our own position.
        const message = `YAML syntax error: ${e.message.split(/ at line \d+, column \d+/)[0]!.trim()}`;
        return { file: src.displayName, line: pos.line, col: pos.col, path: '', message };
      }),
    );
  }

  const raw: unknown = doc.contents === null ? {} : doc.toJS({ maxAliasCount: 100 });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([at(doc.contents?.range?.[0], [], 'the config must be a YAML mapping of keys (listen:, routes:, ...)')]);
  }

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(doc, issue, at)));
  }

  const semantic = resolveConfig(parsed.data as ConfigParsed, {
    source: src.displayName,
    baseDir: src.baseDir,
    embedded: src.embedded,
    env: src.env ?? process.env,
  });
  if (semantic.problems.length > 0) {
    throw new ConfigError(semantic.problems.map((p) => at(offsetOf(doc, p.path), p.path, p.message)));
  }
  return { config: semantic.config, warnings: semantic.warnings };
}

type At = (offset: number | undefined, keyPath: readonly PropertyKey[], message: string) => ConfigProblem;

function describeIssue(doc: Document, issue: z.core.$ZodIssue, at: At): ConfigProblem[] {
  const keyPath = issue.path;
  if (issue.code === 'unrecognized_keys') {
    const node = doc.getIn(keyPath, true) as Node | undefined;
    return issue.keys.map((key) => {
      const pair = isMap(node) ? node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key) : undefined;
      const keyNode = pair && isPair(pair) ? (pair.key as Node | null) : null;
      const allowed = allowedKeys(keyPath);
      const hint = allowed ? ` (allowed here: ${allowed.join(', ')})` : '';
      return at(keyNode?.range?.[0] ?? node?.range?.[0], [...keyPath, key], `unknown key${hint}`);
    });
  }
  const present = doc.hasIn(keyPath);
  let message = issue.message;
  if (!present && issue.code === 'invalid_type') message = 'is required';
  else if (issue.code === 'invalid_type') message = message.replace(/^Invalid input: /, '');
  return [at(offsetOf(doc, keyPath), keyPath, message)];
}

/** Offset of the node at keyPath, or of its nearest ancestor present in the document. */
function offsetOf(doc: Document, keyPath: readonly PropertyKey[]): number | undefined {
  for (let n = keyPath.length; n >= 0; n--) {
    const node = doc.getIn(keyPath.slice(0, n), true) as Node | undefined;
    if (node?.range) return node.range[0];
  }
  return doc.contents?.range?.[0];
}

/** The keys the schema allows in the object at keyPath, for a friendlier "unknown key" message. */
function allowedKeys(keyPath: readonly PropertyKey[]): string[] | null {
  let schema: unknown = ConfigSchema;
  for (const part of keyPath) {
    schema = unwrap(schema);
    const def = (schema as { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } }).def;
    if (def?.type === 'object' && typeof part === 'string') schema = def.shape?.[part];
    else if (def?.type === 'array' && typeof part === 'number') schema = def.element;
    else return null;
  }
  const def = (unwrap(schema) as { def?: { type?: string; shape?: Record<string, unknown> } }).def;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : null;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown; in?: unknown } } | undefined;
  for (let i = 0; i < 10 && s?.def; i++) {
    const t = s.def.type;
    if (t === 'optional' || t === 'default' || t === 'prefault' || t === 'nullable') s = s.def.innerType as typeof s;
    else if (t === 'pipe') s = s.def.in as typeof s;
    else break;
  }
  return s;
}
