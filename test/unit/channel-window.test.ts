import { Readable } from 'node:stream';
import { expect } from 'chai';
import { BASE_WINDOW, createWindowBudget, growingWindow } from '../../src/ssh/channel-window.js';

const MiB = 1024 * 1024;

/** A stand-in for an ssh2 channel: a stream with the protocol state the window code reads. */
function fakeChannel() {
  const s = new Readable({ read() {}, highWaterMark: BASE_WINDOW }) as Readable & Record<string, unknown>;
  const adjusts: number[] = [];
  Object.assign(s, {
    incoming: { window: BASE_WINDOW, state: 'open' },
    outgoing: { id: 7, state: 'open' },
    _client: { _protocol: { channelWindowAdjust: (_id: number, n: number) => adjusts.push(n) } },
  });
  const incoming = s.incoming as { window: number };
  /** What ssh2's CHANNEL_DATA handler does: take the bytes off the window, push them. */
  const receive = (n: number) => {
    incoming.window -= n;
    s.push(Buffer.alloc(n));
  };
  return { s, adjusts, incoming, receive };
}

describe('growing channel window (long fat links)', function () {
  const flowing = () => new Promise((r) => setImmediate(r));

  it('a sender that keeps using the window gets it doubled up to the max, one adjust per half window', async function () {
    const { s, adjusts, incoming, receive } = fakeChannel();
    const budget = createWindowBudget(64 * MiB);
    const w = growingWindow(s as never, 16 * MiB, [budget]);
    await flowing();
    for (let i = 0; i < 200; i++) receive(256 * 1024);
    expect(w.stats().maxTarget).to.equal(16 * MiB);
    expect(incoming.window).to.be.within(8 * MiB, 16 * MiB);
    expect(budget.available).to.equal(64 * MiB - 14 * MiB);
    // 2 -> 4 -> 8 -> 16 MiB, then top-ups of half the window.
    expect(adjusts.slice(0, 3)).to.deep.equal([3 * MiB, 6 * MiB, 12 * MiB]);
    w.release();
    expect(budget.available).to.equal(64 * MiB);
  });

  it('a slow consumer stops the top-ups: the sender is left with the window it has', function () {
    const { s, adjusts, receive } = fakeChannel();
    const w = growingWindow(s as never, 16 * MiB, [createWindowBudget(64 * MiB)]);
    // A stalled target behind a pipe: the channel is paused and the bytes pile up unread.
    s.pause();
    for (let i = 0; i < 12; i++) receive(256 * 1024);
    expect(s.readableLength).to.equal(3 * MiB);
    // The consumer takes one chunk: 'data' fires, but the backlog is still there: no top-up.
    s.read(256 * 1024);
    expect(adjusts).to.deep.equal([]);
    expect(w.stats().adjustments).to.equal(0);
  });

  it('growth comes out of one budget: when it is spent, channels stay at their window', async function () {
    const budget = createWindowBudget(4 * MiB);
    const a = fakeChannel();
    const b = fakeChannel();
    const wa = growingWindow(a.s as never, 16 * MiB, [budget]);
    const wb = growingWindow(b.s as never, 16 * MiB, [budget]);
    await flowing();
    for (let i = 0; i < 100; i++) {
      a.receive(256 * 1024);
      b.receive(256 * 1024);
    }
    expect(budget.available).to.equal(0);
    expect(wa.stats().maxTarget + wb.stats().maxTarget).to.equal(2 * BASE_WINDOW + 4 * MiB);
    wa.release();
    expect(budget.available).to.equal(wa.stats().maxTarget - BASE_WINDOW);
    wb.release();
    expect(budget.available).to.equal(4 * MiB);
  });
});
