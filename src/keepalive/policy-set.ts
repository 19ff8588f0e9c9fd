/**
 * The policies a leg serves at once, and the one it runs: the strictest (src/keepalive/policy.ts).
 * The client leg serves every open channel's route (and the gateway route), with the top-level
 * default while there are none; a pooled bastion connection serves the channels on it, and runs no
 * keepalive while it has none (its idle timer runs instead). Keys are whatever owns an entry (a
 * channel record); labels are route names, for logs.
 */
import { samePolicy, strictest, type KeepalivePolicy } from './policy.js';

export class PolicySet<K = object> {
  private readonly entries = new Map<K, { readonly policy: KeepalivePolicy; readonly label: string }>();

  constructor(
    /** Read at each use (a reload changes the default); undefined = no policy while empty. */
    private readonly fallback: () => KeepalivePolicy | undefined = () => undefined,
    /** Called when current() may have changed. */
    private readonly changed: (p: KeepalivePolicy | undefined) => void = () => {},
  ) {}

  add(key: K, policy: KeepalivePolicy, label: string): void {
    const before = this.current();
    this.entries.set(key, { policy, label });
    this.notify(before);
  }

  remove(key: K): void {
    const before = this.current();
    if (this.entries.delete(key)) this.notify(before);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The strictest policy in the set, or the fallback when it is empty. */
  current(): KeepalivePolicy | undefined {
    return strictest([...this.entries.values()].map((e) => e.policy)) ?? this.fallback();
  }

  /** The label (route name) of the entry whose policy is current; undefined when the fallback runs. */
  currentLabel(): string | undefined {
    const p = strictest([...this.entries.values()].map((e) => e.policy));
    if (!p) return undefined;
    for (const e of this.entries.values()) if (e.policy === p) return e.label;
    return undefined;
  }

  /** The distinct labels (route names) of the entries. */
  labels(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.label))];
  }

  private notify(before: KeepalivePolicy | undefined): void {
    const now = this.current();
    if (before === now || (before && now && samePolicy(before, now))) return;
    this.changed(now);
  }
}
