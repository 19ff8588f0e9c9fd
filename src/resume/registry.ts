/**
 * The worker's resumable sessions, found again by their secret. The map is keyed by a SHA-256 of
 * the secret (the secret itself is kept nowhere else and never logged); the stored copy is compared
 * in constant time, and the user must be the one who opened it. A resume is a fresh login as that
 * user AND the secret: neither alone is enough. (Per worker: a resume that the kernel hands to
 * another worker finds nothing; issue 25.)
 */
import crypto from 'node:crypto';
import type { ResumableLeg } from './leg.js';
import type { ResolvedRoute } from '../config/resolve.js';
import type { LoginKey } from '../ssh/authorized-keys.js';

export interface ResumableEntry {
  readonly id: string;
  readonly user: string;
  readonly dst: string;
  /** The route it was planned on (its client keepalive and limits while attached). */
  readonly route: ResolvedRoute;
  readonly leg: ResumableLeg;
  /** The client address of the transport attached now, or of the last one (ip:port, and the ip). */
  src: string;
  clientIp: string;
  /** The authorized_keys entry of the login that opened it: a reload checks it again. */
  readonly key: LoginKey;
  sameSource: boolean;
  readonly secret: Buffer;
}

export type Found = { readonly entry: ResumableEntry } | { readonly refused: 'unknown' | 'other-user' };

const SECRET_BYTES = 32;
const keyOf = (secret: Buffer) => crypto.createHash('sha256').update(secret).digest('hex');

export class ResumeRegistry {
  private readonly bySecret = new Map<string, ResumableEntry>();

  newSecret(): Buffer {
    return crypto.randomBytes(SECRET_BYTES);
  }

  add(entry: ResumableEntry): void {
    this.bySecret.set(keyOf(entry.secret), entry);
  }

  remove(entry: ResumableEntry): void {
    const k = keyOf(entry.secret);
    if (this.bySecret.get(k) === entry) this.bySecret.delete(k);
  }

  find(user: string, secret: Buffer): Found {
    if (secret.length !== SECRET_BYTES) return { refused: 'unknown' };
    const e = this.bySecret.get(keyOf(secret));
    if (!e || !crypto.timingSafeEqual(e.secret, secret)) return { refused: 'unknown' };
    if (e.user !== user) return { refused: 'other-user' };
    return { entry: e };
  }

  /** The user's detached sessions, oldest first. */
  detachedOf(user: string): ResumableEntry[] {
    return [...this.bySecret.values()].filter((e) => e.user === user && !e.leg.isAttached).sort((a, b) => (a.leg.detachedAt ?? 0) - (b.leg.detachedAt ?? 0));
  }

  get size(): number {
    return this.bySecret.size;
  }

  /** Every entry (shutdown, reload). */
  all(): ResumableEntry[] {
    return [...this.bySecret.values()];
  }
}
