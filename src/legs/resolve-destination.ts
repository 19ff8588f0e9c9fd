/**
 * Resolve once, match, connect to that address. The route is matched on the name the client asked
 * for and on each resolved address in order; holdfast then connects to the first address a route
 * allows and never looks the name up again (a second lookup could return an address the route does
 * not allow).
 */
import dns from 'node:dns';
import net from 'node:net';
import { findRoute, type RouteDecision, type RouteRule } from '../routing/route-table.js';
import { unmapIPv4 } from '../ssh/authorized-keys.js';

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => {
  const found = await dns.promises.lookup(host, { all: true, verbatim: true });
  return found.map((a) => unmapIPv4(a.address));
};

export type Resolution<R extends RouteRule> =
  | { readonly kind: 'routed'; readonly address: string; readonly decision: RouteDecision<R> & { route: R } }
  | { readonly kind: 'refused'; readonly decision: RouteDecision<R> }
  | { readonly kind: 'unresolved'; readonly code: string; readonly route: R; readonly decision: RouteDecision<R> };

export async function resolveAndRoute<R extends RouteRule>(
  routes: readonly R[],
  user: string,
  host: string,
  port: number,
  lookup: Lookup,
  timeoutMs: number,
): Promise<Resolution<R>> {
  const literal = net.isIP(host) !== 0 ? unmapIPv4(host) : null;
  let addresses: string[];
  if (literal) {
    addresses = [literal];
  } else {
    try {
      addresses = await withTimeout(lookup(host), timeoutMs);
    } catch (err) {
      // Unresolvable: still say "prohibited" when no route could allow the name, so the answer does
      // not tell a user which names exist behind the jump host.
      const byName = findRoute(routes, user, { host, address: '', port });
      if (!byName.route) return { kind: 'refused', decision: byName };
      return { kind: 'unresolved', code: (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND', route: byName.route, decision: byName };
    }
  }
  let first: RouteDecision<R> | undefined;
  for (const address of addresses.slice(0, 16)) {
    const decision = findRoute(routes, user, { host, address, port });
    first ??= decision;
    if (decision.route) return { kind: 'routed', address, decision: decision as RouteDecision<R> & { route: R } };
  }
  return { kind: 'refused', decision: first ?? findRoute(routes, user, { host, address: '', port }) };
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
