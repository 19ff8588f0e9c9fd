/**
 * A growing receive window for channels holdfast accepts, so uploads over long fat links are not
 * capped at ssh2's hard-coded 2 MiB per round trip (Channel.js MAX_WINDOW; ~40 MiB/s at 50 ms).
 *
 * Why this way: ssh2 exposes no option, and a patched copy of the dependency would have to be
 * re-applied to every upgrade. The receive window is plain protocol state (RFC 4254 §5.2): we may
 * send CHANNEL_WINDOW_ADJUST whenever we choose. So, like HPN-SSH's dynamic window, each accepted
 * channel starts at ssh2's 2 MiB and, whenever half of it is used while the consumer keeps up, is
 * topped up to its target; the target doubles each time (up to `maxBytes`), so a sender that keeps
 * the window full (a bandwidth-delay product bigger than the window) gets a bigger one.
 *
 * Memory stays bounded: the window is topped up only while little waits in the channel's read
 * buffer (a slow consumer stops the top-ups, and the sender then stops at the window it has); it
 * grows only on bytes the consumer has really taken (GROWTH_SLACK); and the growth beyond 2 MiB comes
 * out of budgets per connection, per user and per process, all at once. Worst case per connection:
 * 2 MiB × maxChannels + CONNECTION_WINDOW_BUDGET. Uses ssh2 internals (incoming.window, outgoing.id,
 * _client._protocol.channelWindowAdjust); pinned ssh2, checked by test/unit/ssh2-internals.test.ts.
 */
import type { Duplex } from 'node:stream';
import { KeyedCount } from '../keyed-count.js';

/** ssh2's own window (Channel.js MAX_WINDOW): where every channel starts. */
export const BASE_WINDOW = 2 * 1024 * 1024;
/** Largest window one channel grows to: 320 MiB/s at 50 ms RTT, 64 MiB/s at 250 ms. */
export const MAX_WINDOW = 16 * 1024 * 1024;
/** Unread bytes in a channel above which its window is no longer topped up: the consumer is behind. */
const BACKLOG_LIMIT = 256 * 1024;
/** Growth beyond BASE_WINDOW, all channels of the process together. */
export const WINDOW_BUDGET = 512 * 1024 * 1024;
/** Growth beyond BASE_WINDOW, all channels of one client connection together. */
export const CONNECTION_WINDOW_BUDGET = 32 * 1024 * 1024;
/** Growth beyond BASE_WINDOW, all connections of one user together. */
export const USER_WINDOW_BUDGET = 96 * 1024 * 1024;
/**
 * Bytes a target's kernel can take without the target reading any (socket send and receive
 * buffers: Linux autotunes them up to tcp_wmem[2] + tcp_rmem[2] = 4 + 6 MiB by default). A window
 * doubles from T only after the consumer has taken GROWTH_SLACK + 2T bytes, so a target that
 * stopped reading never makes a window grow, whatever its kernel absorbed first.
 */
export const GROWTH_SLACK = 16 * 1024 * 1024;

export interface WindowBudget {
  /** Bytes of window beyond BASE_WINDOW still available to grow into, across all channels. */
  available: number;
  readonly total: number;
}

export function createWindowBudget(totalBytes: number): WindowBudget {
  return { available: totalBytes, total: totalBytes };
}

interface ChannelInternals {
  incoming: { window: number; state: string };
  outgoing: { id: number; state: string };
  _client: { _protocol: { channelWindowAdjust(id: number, amount: number): void } };
  readableLength: number;
}

export interface WindowStats {
  /** The largest target the window reached. */
  readonly maxTarget: number;
  readonly adjustments: number;
}

/**
 * Lets the channel's window grow to `maxBytes`. Returns a release function (call it when the
 * channel closes: it gives the channel's growth back to the budget) and its stats.
 */
export function growingWindow(
  channel: Duplex,
  maxBytes: number,
  /** Growth is taken from every one of these at once (process, user, connection). */
  budgets: readonly WindowBudget[],
  /** Bytes the consumer has taken so far (out of holdfast's buffers); undefined = trust the backlog alone. */
  taken?: () => number,
  /** Bytes the channel's reader has taken but still holds (the target socket's write queue). */
  queued: () => number = () => 0,
): { release(): void; stats(): WindowStats } {
  const ch = channel as unknown as ChannelInternals;
  let target = BASE_WINDOW;
  let borrowed = 0;
  let maxTarget = target;
  let adjustments = 0;
  let released = false;
  const onData = () => {
    // The consumer is behind (bytes wait unread): let the sender stop at the window it has. Not the
    // paused flag: a pipe pauses for a moment whenever its destination's buffer passes its mark.
    if (ch.readableLength > BACKLOG_LIMIT) return;
    if (ch.outgoing.state !== 'open' && ch.outgoing.state !== 'eof') return;
    const window = ch.incoming.window;
    if (window > target / 2) return;
    // Half the window is in flight or consumed since the last adjustment: the sender is using all
    // we give it. Double, if the budget allows (on a LAN this costs budget, not speed).
    if (target < maxBytes && (taken === undefined || taken() >= GROWTH_SLACK + 2 * target)) {
      const grow = Math.min(target, maxBytes - target, ...budgets.map((b) => b.available));
      if (grow > 0) {
        for (const b of budgets) b.available -= grow;
        borrowed += grow;
        target += grow;
        if (target > maxTarget) maxTarget = target;
      }
    }
    // What holdfast holds for the channel (unread, and queued toward the target) counts against the
    // window: a top-up never lets window + held pass the target (RSS per stalled channel ~ window).
    const amount = target - window - ch.readableLength - queued();
    if (amount <= 0) return;
    ch.incoming.window += amount;
    ch._client._protocol.channelWindowAdjust(ch.outgoing.id, amount);
    adjustments++;
  };
  channel.on('data', onData);
  return {
    release() {
      if (released) return;
      released = true;
      channel.off('data', onData);
      for (const b of budgets) b.available += borrowed;
      borrowed = 0;
    },
    stats: () => ({ maxTarget, adjustments }),
  };
}

/** Each user's share of window growth (USER_WINDOW_BUDGET), held while they have sessions. */
export class UserWindowBudgets {
  private readonly budgets = new Map<string, WindowBudget>();
  private readonly holders = new KeyedCount();

  take(user: string): { budget: WindowBudget; release(): void } {
    const budget = this.budgets.get(user) ?? createWindowBudget(USER_WINDOW_BUDGET);
    this.budgets.set(user, budget);
    const giveBack = this.holders.take(user);
    return {
      budget,
      release: () => {
        giveBack();
        if (this.holders.held(user) === 0) this.budgets.delete(user);
      },
    };
  }
}
