/**
 * Logging: JSON lines when stdout is not a TTY (journald, files, tests), readable text on a TTY.
 * Every line has a fixed `event` name; fields use fixed names across the code base:
 *   session (id), user, src ("ip:port"), dst ("host:port"), addr (resolved address), route, reason,
 *   bytesUp (client -> target), bytesDown (target -> client), durationMs, leg.
 * Keys and signatures are never logged.
 */
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
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/** JSON line: {"time":..., "level":..., "event":..., ...fields}. */
const jsonLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
  return JSON.stringify({ time: timestamp, level, event: message, ...rest });
});

export function createLogger(opts: { level?: Level; json?: boolean; stream?: NodeJS.WritableStream } = {}): Logger {
  const json = opts.json ?? !process.stdout.isTTY;
  const w = winston.createLogger({
    level: opts.level ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), json ? jsonLine : textLine),
    transports: [
      opts.stream ? new winston.transports.Stream({ stream: opts.stream }) : new winston.transports.Console(),
    ],
  });
  return {
    error: (event, fields) => w.error(event, fields),
    warn: (event, fields) => w.warn(event, fields),
    info: (event, fields) => w.info(event, fields),
    // winston hands every call, whatever its level, to its transform stream: check first.
    debug: (event, fields) => {
      if (w.isLevelEnabled('debug')) w.debug(event, typeof fields === 'function' ? fields() : fields);
    },
    setLevel: (level) => {
      w.level = level;
    },
  };
}
