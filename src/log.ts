/**
 * Logging: JSON lines when stdout is not a TTY (journald, files, tests), readable text on a TTY.
 * When stdout is the journal (JOURNAL_STREAM names its device and inode, as systemd sets it), each
 * line starts with its syslog priority, `<3>` error, `<4>` warn, `<6>` info, `<7>` debug, which
 * journald takes as the entry's PRIORITY (SyslogLevelPrefix=, on by default) and strips: so
 * `journalctl -p warning -u holdfast` shows holdfast's warnings and errors.
 * Every line has a fixed `event` name; fields use fixed names across the code base:
 *   session (id), user, src ("ip:port"), dst ("host:port"), addr (resolved address), route, reason,
 *   bytesUp (client -> target), bytesDown (target -> client), durationMs, leg.
 * Keys and signatures are never logged.
 */
import fs from 'node:fs';
import winston from 'winston';

export type LogFields = Record<string, unknown>;
export type Level = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  /** Fields may be a function: it is called only when debug is enabled (hot paths). */
  debug(event: string, fields?: LogFields | (() => LogFields)): void;
  setLevel(level: Level): void;
}

const textLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
  return `${String(timestamp)} ${String(level).padEnd(5)} ${String(message)}${fields ? ` ${fields}` : ''}`;
});

function formatValue(v: unknown): string {
  // Control characters (a client's user name may carry terminal escapes) are JSON-escaped.
  if (typeof v === 'string') return /[\s"=\u0000-\u001f\u007f-\u009f]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/** JSON line: {"time":..., "level":..., "event":..., ...fields}. */
const jsonLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
  return JSON.stringify({ time: timestamp, level, event: message, ...rest });
});

const PRIORITY: Record<string, string> = { error: '<3>', warn: '<4>', info: '<6>', debug: '<7>' };

/** The same line with the journal's priority prefix before it. */
function withPriority(line: winston.Logform.Format): winston.Logform.Format {
  return winston.format.combine(
    line,
    winston.format((info) => {
      const out = info as Record<string | symbol, unknown>;
      const key = Symbol.for('message');
      out[key] = `${PRIORITY[String(info.level)] ?? '<6>'}${String(out[key])}`;
      return info;
    })(),
  );
}

/** Whether fd 1 is the stream systemd connected to the journal (JOURNAL_STREAM is "DEV:INODE"). */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(1, { bigint: true });
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

/**
 * Longest string a log field keeps. Many fields carry what a client sent (user names, destinations,
 * commands): a 30,000-character user name must not become 30 KB per log line.
 */
export const MAX_FIELD_CHARS = 512;

function clipString(v: string): string {
  return v.length <= MAX_FIELD_CHARS ? v : `${v.slice(0, MAX_FIELD_CHARS)}…[+${v.length - MAX_FIELD_CHARS} chars]`;
}

/** Every string field (and strings in arrays and nested objects, two levels down) clipped. */
export function clipFields(fields: LogFields | undefined, depth = 0): LogFields | undefined {
  if (!fields) return fields;
  let out: LogFields | undefined;
  for (const [k, v] of Object.entries(fields)) {
    let c: unknown = v;
    if (typeof v === 'string') c = clipString(v);
    else if (Array.isArray(v)) c = v.length > 64 ? [...v.slice(0, 64).map(clipAny(depth)), `…[+${v.length - 64} more]`] : v.map(clipAny(depth));
    else if (v && typeof v === 'object' && depth < 2 && Object.getPrototypeOf(v) === Object.prototype) c = clipFields(v as LogFields, depth + 1);
    if (c !== v) (out ??= { ...fields })[k] = c;
  }
  return out ?? fields;
}

function clipAny(depth: number) {
  return (v: unknown): unknown =>
    typeof v === 'string' ? clipString(v) : v && typeof v === 'object' && depth < 2 && !Array.isArray(v) ? clipFields(v as LogFields, depth + 1) : v;
}

/** `base`: fields on every line (a worker's `worker` id). */
export function createLogger(opts: { level?: Level; json?: boolean; stream?: NodeJS.WritableStream; base?: LogFields; journal?: boolean } = {}): Logger {
  const json = opts.json ?? !process.stdout.isTTY;
  const line = json ? jsonLine : textLine;
  const journal = opts.journal ?? (!opts.stream && stdoutIsJournal());
  const w = winston.createLogger({
    level: opts.level ?? 'info',
    ...(opts.base ? { defaultMeta: opts.base } : {}),
    format: winston.format.combine(winston.format.timestamp(), journal ? withPriority(line) : line),
    transports: [
      opts.stream ? new winston.transports.Stream({ stream: opts.stream }) : new winston.transports.Console(),
    ],
  });
  return {
    error: (event, fields) => w.error(event, clipFields(fields)),
    warn: (event, fields) => w.warn(event, clipFields(fields)),
    info: (event, fields) => w.info(event, clipFields(fields)),
    // winston hands every call, whatever its level, to its transform stream: check first.
    debug: (event, fields) => {
      if (w.isLevelEnabled('debug')) w.debug(event, clipFields(typeof fields === 'function' ? fields() : fields));
    },
    setLevel: (level) => {
      w.level = level;
    },
  };
}
