/**
 * ssh_config-style pattern matching (`*` any run, `?` one character), case-insensitive, as OpenSSH's
 * match_pattern() does for Host blocks. Iterative with one backtrack point, so a hostile name against a
 * pattern with many stars costs O(name × pattern), never exponential time (no RegExp is built).
 */
export function wildcardMatch(text: string, pattern: string): boolean {
  const s = text.toLowerCase();
  const p = pattern.toLowerCase();
  let si = 0;
  let pi = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) {
      si++;
      pi++;
    } else if (pi < p.length && p[pi] === '*') {
      starP = pi++;
      starS = si;
    } else if (starP !== -1) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * A `!`-list, as ssh_config `Host`, sshd's `from=` and holdfast's `users` and `to` read it: the first
 * negated entry that hits excludes at once; otherwise the list includes when some positive entry hit.
 * `by` is the entry that decided (the excluding one, or the first positive hit). Every list of
 * patterns in holdfast is read through this one function.
 */
export function patternListVerdict<P>(patterns: Iterable<P>, negated: (p: P) => boolean, hit: (p: P) => boolean): { readonly verdict: 'included' | 'excluded' | 'none'; readonly by?: P } {
  let first: { verdict: 'included'; by: P } | undefined;
  for (const p of patterns) {
    if (!hit(p)) continue;
    if (negated(p)) return { verdict: 'excluded', by: p };
    first ??= { verdict: 'included', by: p };
  }
  return first ?? { verdict: 'none' };
}

/** Strings with `!` for exclusion and wildcards (`users`, known_hosts host patterns). */
export function matchPatternList(candidates: readonly string[], patterns: readonly string[]): boolean {
  const bare = (raw: string) => (raw.startsWith('!') ? raw.slice(1) : raw);
  return patternListVerdict(patterns, (raw) => raw.startsWith('!'), (raw) => candidates.some((c) => wildcardMatch(c, bare(raw)))).verdict === 'included';
}
