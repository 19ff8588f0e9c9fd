/**
 * Unauthenticated connections ("startups"), limited the way sshd limits them (sshd_config(5)):
 * - `maxStartups` start:rate:full: at `start` pending startups new ones are refused with probability
 *   rate %, rising linearly to 100 % at `full` (sshd's drop_connection()).
 * - `perSourceMaxStartups`: at most this many pending startups per source network, whose size is
 *   `perSourceNetBlockSize` (IPv4 bits:IPv6 bits), as sshd 9.8 does.
 * A startup ends when the connection authenticates or closes. Pure apart from the injected random.
 */
import net from 'node:net';

export interface StartupLimits {
  readonly start: number;
  readonly rate: number;
  readonly full: number;
  /** 0 = no per-source limit ("none"). */
  readonly perSource: number;
  readonly v4Bits: number;
  readonly v6Bits: number;
}

/** `pending`: unauthenticated connections when it was refused (host-wide when the primary decides). */
export type Admission = { readonly ok: true; release(): void } | { readonly ok: false; readonly why: string; readonly pending: number };

/**
 * Where a connection's admission is decided: a StartupGate in this process, or, in a worker, the
 * primary's one gate for every worker (src/daemon/shared-startups.ts), so the limits are host-wide.
 */
export interface StartupAdmitter {
  admit(ip: string, limits: StartupLimits): Admission | Promise<Admission>;
}

/** The limits in force are passed with each admission (a reload changes them for the next one). */
export class StartupGate implements StartupAdmitter {
  private pending = 0;
  private readonly bySource = new Map<string, number>();

  constructor(private readonly random: () => number = Math.random) {}

  get pendingStartups(): number {
    return this.pending;
  }

  admit(ip: string, l: StartupLimits): Admission {
    const block = sourceBlock(ip, l.v4Bits, l.v6Bits);
    const fromSource = this.bySource.get(block) ?? 0;
    const refuse = (why: string): Admission => ({ ok: false, why, pending: this.pending });
    if (l.perSource > 0 && fromSource >= l.perSource) return refuse(`perSourceMaxStartups ${l.perSource} reached for ${block}`);
    if (this.pending >= l.start) {
      if (this.pending >= l.full) return refuse(`maxStartups full (${this.pending} unauthenticated connections)`);
      // sshd: p = rate + (100 - rate) × (pending - start) / (full - start), in per cent.
      const p = l.rate + ((100 - l.rate) * (this.pending - l.start)) / (l.full - l.start);
      if (this.random() * 100 < p) return refuse(`maxStartups ${l.start}:${l.rate}:${l.full} (${this.pending} unauthenticated connections, refused with probability ${Math.round(p)} %)`);
    }
    this.pending++;
    this.bySource.set(block, fromSource + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.pending--;
        const n = (this.bySource.get(block) ?? 1) - 1;
        if (n <= 0) this.bySource.delete(block);
        else this.bySource.set(block, n);
      },
    };
  }
}

/** The source network an address counts against: "198.51.100.7/32", "2001:db8::/64". */
export function sourceBlock(ip: string, v4Bits: number, v6Bits: number): string {
  const family = net.isIP(ip);
  if (family === 4) {
    const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const masked = v4Bits === 0 ? 0 : Math.floor(n / 2 ** (32 - v4Bits)) * 2 ** (32 - v4Bits);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${v4Bits}`;
  }
  if (family === 6) {
    const groups = expandIPv6(ip);
    if (groups.length !== 8 || groups.some(Number.isNaN)) return ip;
    let bits = v6Bits;
    const out = groups.map((g) => {
      const keep = Math.max(0, Math.min(16, bits));
      bits -= 16;
      return keep === 0 ? 0 : keep === 16 ? g : g & (0xffff << (16 - keep)) & 0xffff;
    });
    return `${out.map((g) => g.toString(16)).join(':')}/${v6Bits}`;
  }
  return ip;
}

function expandIPv6(ip: string): number[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/** PerSourceNetBlockSize: "IPv4bits[:IPv6bits]" (sshd's syntax; IPv6 defaults to /128). */
export function parseNetBlockSize(v: string | number): { ok: true; v4Bits: number; v6Bits: number } | { ok: false; message: string } {
  const m = /^(\d{1,2})(?::(\d{1,3}))?$/.exec(String(v));
  const v4Bits = Number(m?.[1]);
  const v6Bits = Number(m?.[2] ?? 128);
  if (!m || v4Bits > 32 || v6Bits > 128) return { ok: false, message: `"${v}" is not IPv4bits[:IPv6bits] (e.g. 32:64)` };
  return { ok: true, v4Bits, v6Bits };
}

/** "start:rate:full" or a bare number (start = full, as sshd reads it). */
export function parseMaxStartups(v: string | number): { ok: true; start: number; rate: number; full: number } | { ok: false; message: string } {
  const text = String(v);
  const m = /^(\d+)(?::(\d+):(\d+))?$/.exec(text);
  if (!m) return { ok: false, message: `"${text}" is not start:rate:full (e.g. 10:30:100) or a number` };
  const start = Number(m[1]);
  if (m[2] === undefined) return start >= 1 ? { ok: true, start, rate: 100, full: start } : { ok: false, message: 'maxStartups must be at least 1' };
  const rate = Number(m[2]);
  const full = Number(m[3]);
  if (start < 1 || rate > 100 || full < start) return { ok: false, message: `"${text}": need 1 <= start <= full and rate <= 100` };
  return { ok: true, start, rate, full };
}
