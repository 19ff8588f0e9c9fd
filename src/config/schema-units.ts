/**
 * Durations in the config: seconds as a bare number, or a string with units (`30s`, `5m`, `1d`),
 * parsed to milliseconds; with a default and a lower bound where one is needed.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** Seconds as a bare number, or a string with units; parsed to milliseconds. */
export function duration(doc: string) {
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const r = parseDuration(v);
      if (!r.ok) {
        ctx.addIssue({ code: 'custom', message: r.message });
        return z.NEVER;
      }
      return r.ms;
    })
    .describe(doc);
}

export function durationDefault(doc: string, def: string, min?: { ms: number; why: string }) {
  if (!min) return duration(doc).prefault(def);
  return duration(doc)
    .refine((ms) => ms >= min.ms, { message: `must be at least ${min.ms >= 1000 ? `${min.ms / 1000}s` : `${min.ms}ms`}: ${min.why}` })
    .prefault(def);
}
