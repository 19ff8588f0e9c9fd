/**
 * Route selection: first match wins, like `Host` blocks in ssh_config. A route matches when its
 * `users` (if any) match the authenticated user and its `to` list matches the destination. A
 * destination that no route allows is refused: default deny.
 */
import { type Destination, type DestinationPattern, destinationPatternMatches } from './destination.js';
import { matchPatternList, patternListVerdict } from './wildcard.js';

export interface RouteRule {
  readonly name: string;
  /** ssh_config patterns (`!` excludes); undefined = any authenticated user. */
  readonly users?: readonly string[] | undefined;
  readonly to: readonly DestinationPattern[];
}

export type RouteMiss = { readonly route: string; readonly why: string };

export type RouteDecision<R extends RouteRule> =
  | { readonly route: R; readonly misses: readonly RouteMiss[] }
  | { readonly route: null; readonly misses: readonly RouteMiss[] };

export function whyRouteMisses(rule: RouteRule, user: string, dest: Destination): string | null {
  if (rule.users && !matchPatternList([user], rule.users)) return `user "${user}" is not in users`;
  let guarded: string | undefined;
  const v = patternListVerdict(
    rule.to,
    (p) => p.negated,
    (p) => {
      const m = destinationPatternMatches(p, dest);
      if (m === 'guarded') guarded ??= p.source;
      return m === 'hit';
    },
  );
  if (v.verdict === 'excluded') return `excluded by "${v.by!.source}"`;
  if (v.verdict === 'included') return null;
  if (guarded !== undefined && dest.protection) {
    const p = dest.protection;
    return `${dest.address} is ${p.what}: only an entry naming that address (or a CIDR inside ${p.network}/${p.prefix}) reaches it, not "${guarded}"`;
  }
  return `no "to" entry matches ${formatDestination(dest)}`;
}

export function findRoute<R extends RouteRule>(routes: readonly R[], user: string, dest: Destination): RouteDecision<R> {
  const misses: RouteMiss[] = [];
  for (const route of routes) {
    const why = whyRouteMisses(route, user, dest);
    if (why === null) return { route, misses };
    misses.push({ route: route.name, why });
  }
  return { route: null, misses };
}

export function formatDestination(dest: Pick<Destination, 'host' | 'port' | 'address'>): string {
  const addr = dest.address && dest.address !== dest.host ? ` (${dest.address})` : '';
  const host = dest.host.includes(':') ? `[${dest.host}]` : dest.host;
  return `${host}:${dest.port}${addr}`;
}
