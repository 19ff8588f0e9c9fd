/**
 * What a worker holds for targets that are not reading (maxQueuedMiBPerUser, maxQueuedMiB): the sum,
 * per user and in all, of every channel's unread and queued bytes, and of what detached resumable
 * sessions (holdfast connect) hold in their buffers. Summed over the live sessions when
 * a channel is opened, at most once a second (a channel open never walks 50,000 sessions each time);
 * between two sums a burst of opens can pass the bound by what those channels then take (2 MiB each at
 * most, their window).
 */
export interface QueuedBytesSource {
  readonly user: string | undefined;
  readonly registry: { queuedBytes(): number };
}

export interface Queued {
  readonly user: number;
  readonly process: number;
}

const REFRESH_MS = 1000;

export class QueuedBytes {
  private at = -Infinity;
  private total = 0;
  private byUser = new Map<string, number>();

  constructor(
    private readonly sessions: () => Iterable<QueuedBytesSource>,
    private readonly now: () => number = () => performance.now(),
    /** Held outside any session: detached resumable sessions (holdfast connect), by user. */
    private readonly detached: () => Iterable<{ readonly user: string; readonly queuedBytes: number }> = () => [],
  ) {}

  of(user: string): Queued {
    const t = this.now();
    if (t - this.at >= REFRESH_MS) {
      this.at = t;
      this.total = 0;
      this.byUser = new Map();
      for (const s of this.sessions()) {
        const n = s.registry.queuedBytes();
        if (n === 0 || s.user === undefined) continue;
        this.total += n;
        this.byUser.set(s.user, (this.byUser.get(s.user) ?? 0) + n);
      }
      for (const d of this.detached()) {
        if (d.queuedBytes === 0) continue;
        this.total += d.queuedBytes;
        this.byUser.set(d.user, (this.byUser.get(d.user) ?? 0) + d.queuedBytes);
      }
    }
    return { user: this.byUser.get(user) ?? 0, process: this.total };
  }
}
