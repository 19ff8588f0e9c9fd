/**
 * The admin listener across SIGHUPs, in the primary: a reload whose `admin:` differs from the one in
 * force closes the listener and opens the new one (same address: closed first, so the port is free;
 * another address: the new one is bound first). Without this a changed token, address or
 * `admin: off` was silently ignored until a restart.
 */
import type http from 'node:http';
import type { AdminListener } from '../config/resolve-admin.js';
import type { Events } from '../events.js';
import { startAdmin, type AdminSources } from './admin.js';

export type AdminChange = 'unchanged' | 'opened' | 'reopened' | 'closed';

export class AdminHolder {
  private server: http.Server | undefined;
  private at: AdminListener | undefined;
  /** Serialises reloads: a second SIGHUP waits for the first one's listener. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sources: AdminSources,
    private readonly events: Events,
  ) {}

  /** Opens, reopens or closes the listener so that it matches `at`; says which it did. */
  apply(at: AdminListener | undefined): Promise<AdminChange> {
    const next = this.chain.then(() => this.applyNow(at));
    this.chain = next.catch(() => {});
    return next;
  }

  get listener(): http.Server | undefined {
    return this.server;
  }

  /** Stop accepting keep-alive requests (health turns 503 first: the caller says so). */
  closeIdle(): void {
    this.server?.closeIdleConnections();
  }

  close(): void {
    if (this.server) void closed(this.server);
    this.server = undefined;
  }

  private async applyNow(at: AdminListener | undefined): Promise<AdminChange> {
    const had = this.at !== undefined;
    // The same settings, and bound (a listener that could not bind is tried again).
    if (same(at, this.at) && (this.server || !at)) return 'unchanged';
    const old = this.server;
    const sameAddress = old && at && at.address === this.at?.address && at.port === this.at?.port;
    if (old && (sameAddress || !at)) await closed(old);
    this.at = at;
    this.server = at ? await startAdmin(at, this.sources, this.events) : undefined;
    if (old && !sameAddress && at) await closed(old);
    return !at ? 'closed' : had ? 'reopened' : 'opened';
  }
}

function same(a: AdminListener | undefined, b: AdminListener | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function closed(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
