/**
 * Canonicalise once, resolve once, match, connect to that address. The destination is first put in
 * its one spelling (src/routing/canonical.ts); the route is matched on that name and on each resolved
 * address in order; holdfast then connects to the first address a route allows and never looks the
 * name up again (a second lookup could return an address the route does not allow).
 */
import dns from 'node:dns';
import { findRoute, type RouteDecision, type RouteRule } from './route-table.js';
import { canonicalAddress, canonicalHost, validPort, type HostKind } from './canonical.js';
import { BASE_GUARD, type AddressGuard } from './guard.js';

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => {
  const found = await dns.promises.lookup(host, { all: true, verbatim: true });
  return found.map((a) => canonicalAddress(a.address));
};

export type Resolution<R extends RouteRule> =
  | { readonly kind: 'routed'; readonly host: string; readonly address: string; readonly decision: RouteDecision<R> & { route: R } }
  | { readonly kind: 'refused'; readonly host: string; readonly decision: RouteDecision<R> }
  | { readonly kind: 'unresolved'; readonly host: string; readonly code: string; readonly route: R; readonly decision: RouteDecision<R> };

/** A destination in its one spelling (canonicalDestination's result). */
export interface Canonical {
  readonly host: string;
  readonly kind: HostKind;
  readonly port: number;
}

/** A destination as the client asked for it, in its one spelling, or why it is not a destination. */
export type CanonicalDestination = ({ readonly ok: true } & Canonical) | { readonly ok: false; readonly why: string };

export function canonicalDestination(host: string, port: number): CanonicalDestination {
  if (!validPort(port)) return { ok: false, why: `port ${port} is outside 1-65535` };
  const c = canonicalHost(host);
  return c.ok ? { ok: true, host: c.host, kind: c.kind, port } : { ok: false, why: c.why };
}

/** `dest` comes from canonicalDestination(): callers canonicalise once, before any other check. */
export async function resolveAndRoute<R extends RouteRule>(
  routes: readonly R[],
  user: string,
  dest: Canonical,
  lookup: Lookup,
  timeoutMs: number,
  guard: AddressGuard = BASE_GUARD,
): Promise<Resolution<R>> {
  const { host, kind, port } = dest;
  let addresses: string[];
  if (kind !== 'name') {
    addresses = [host];
  } else {
    try {
      addresses = (await withTimeout(lookup(host), timeoutMs)).map(canonicalAddress);
    } catch (err) {
      // Unresolvable: still say "prohibited" when no route could allow the name, so the answer does
      // not tell a user which names exist behind the jump host.
      const byName = findRoute(routes, user, { host, kind, address: '', port });
      if (!byName.route) return { kind: 'refused', host, decision: byName };
      return { kind: 'unresolved', host, code: (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND', route: byName.route, decision: byName };
    }
  }
  let first: RouteDecision<R> | undefined;
  for (const address of addresses.slice(0, 16)) {
    const decision = findRoute(routes, user, { host, kind, address, port, protection: guard.protection(address) });
    first ??= decision;
    if (decision.route) return { kind: 'routed', host, address, decision: decision as RouteDecision<R> & { route: R } };
  }
  return { kind: 'refused', host, decision: first ?? findRoute(routes, user, { host, kind, address: '', port }) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(Object.assign(new Error('lookup timed out'), { code: 'ETIMEDOUT' })), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
