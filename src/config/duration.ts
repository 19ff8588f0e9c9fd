/**
 * Durations in holdfast's YAML.
 *
 * A bare number is seconds, as in sshd_config (`ClientAliveInterval 30`). A string carries units and
 * may chain them like sshd's time format: `500ms`, `30s`, `5m`, `1h`, `1m30s`. A bare numeric string
 * ("30") is seconds too. Everything inside holdfast is milliseconds.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** One day is far beyond any sensible timer here, and it keeps every value inside setTimeout's range. */
export const MAX_DURATION_MS = 86_400_000;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

export function parseDuration(input: unknown): DurationResult {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return bad(input);
    return bounded(Math.round(input * 1000), input);
  }
  if (typeof input !== 'string') return { ok: false, message: 'expected a duration such as 30s, 500ms or 5m' };
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return bounded(Math.round(Number(text) * 1000), input);
  if (text === '') return bad(input);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (!m || m.index !== at) return bad(input);
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return bounded(Math.round(total), input);
}

function bounded(ms: number, input: unknown): DurationResult {
  if (ms > MAX_DURATION_MS) return { ok: false, message: `${JSON.stringify(input)} is longer than 1 day` };
  return { ok: true, ms };
}

function bad(input: unknown): DurationResult {
  return {
    ok: false,
    message: `${JSON.stringify(input)} is not a valid duration (use seconds, or a string with units: 500ms, 30s, 5m, 1h)`,
  };
}

/** Formats milliseconds the way a person writes them in the config: 30s, 1m30s, 500ms. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
