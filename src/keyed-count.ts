/**
 * How many of something each key holds now (a user's logins, a source's admin connections), with a
 * release that gives back exactly once however often it is called; a key at 0 is forgotten.
 */
export class KeyedCount {
  private readonly counts = new Map<string, number>();

  held(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  take(key: string): () => void {
    this.counts.set(key, this.held(key) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = this.held(key) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }
}
