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
 * A list of patterns where `!pattern` excludes, as in ssh_config `Host` and authorized_keys `from=`:
 * the list matches when some positive pattern matches and no negated one does.
 */
export function matchPatternList(candidates: readonly string[], patterns: readonly string[]): boolean {
  let positive = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    const hit = candidates.some((c) => wildcardMatch(c, pattern));
    if (hit && negated) return false;
    if (hit) positive = true;
  }
  return positive;
}
