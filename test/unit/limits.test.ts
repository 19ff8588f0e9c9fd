import { expect } from 'chai';
import { Deadline, IdleWatch, warnLead } from '../../src/session/limits.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** idleTimeout and maxSessionTime on a fake clock (src/session/limits.ts). */
describe('session limits (src/session/limits.ts)', function () {
  it('warns 60 s before a limit, or at half of a shorter one', function () {
    expect(warnLead(3_600_000)).to.equal(60_000);
    expect(warnLead(120_000)).to.equal(60_000);
    expect(warnLead(3000)).to.equal(1500);
  });

  describe('IdleWatch', function () {
    it('a channel silent from the start: warned at T/2 (T < 120 s), closed at T exactly', function () {
      const clock = new FakeClock();
      const seen: string[] = [];
      new IdleWatch(3000, () => 0, { warn: (left) => seen.push(`warn@${clock.now()} left ${left}`), expire: () => seen.push(`idle@${clock.now()}`) }, clock);
      clock.advance(10_000);
      expect(seen).to.deep.equal(['warn@1500 left 1500', 'idle@3000']);
      expect(clock.pending, 'no timer after it fired').to.equal(0);
    });

    it('a line every second for 8 s keeps it; silence after the last one closes it within T + T/8', function () {
      const clock = new FakeClock();
      let bytes = 0;
      let idleAt = -1;
      let warns = 0;
      new IdleWatch(3000, () => bytes, { warn: () => warns++, expire: () => (idleAt = clock.now()) }, clock);
      for (let s = 1; s <= 8; s++) {
        clock.advanceTo(s * 1000);
        bytes += 6; // "line\n" and its echo
      }
      expect(idleAt, 'closed while busy').to.equal(-1);
      clock.advance(10_000);
      expect(idleAt - 8000).to.be.within(3000, 3000 + 375);
      expect(warns, 'warned once, in the final silence').to.equal(1);
    });

    it('only the counter counts: keepalive traffic never reaches it, so a channel with only keepalive is idle', function () {
      const clock = new FakeClock();
      let idle = false;
      new IdleWatch(60_000, () => 42, { expire: () => (idle = true) }, clock);
      clock.advance(59_999);
      expect(idle).to.equal(false);
      clock.advance(1);
      expect(idle).to.equal(true);
    });

    it('a reload that shortens the limit counts the idleness so far; 0 turns it off; stop() leaves no timer', function () {
      const clock = new FakeClock();
      let idleAt = -1;
      const w = new IdleWatch(60_000, () => 0, { expire: () => (idleAt = clock.now()) }, clock);
      clock.advance(5000);
      w.setTimeout(4000);
      clock.advance(1);
      expect(idleAt, 'already idle 5 s > 4 s: at once').to.equal(5000);
      const off = new IdleWatch(1000, () => 0, { expire: () => expect.fail('off') }, clock);
      off.setTimeout(0);
      clock.advance(5000);
      expect(clock.pending).to.equal(0);
      const stopped = new IdleWatch(1000, () => 0, { expire: () => expect.fail('stopped') }, clock);
      stopped.stop();
      expect(clock.pending).to.equal(0);
      clock.advance(5000);
    });
  });

  describe('Deadline', function () {
    it('warns 60 s before and expires on time; moves when set again; set(undefined) clears it', function () {
      const clock = new FakeClock();
      const seen: string[] = [];
      const d = new Deadline({ warn: (left) => seen.push(`warn@${clock.now()} left ${left}`), expire: () => seen.push(`end@${clock.now()}`) }, clock);
      d.set(600_000, 600_000);
      clock.advanceTo(100_000);
      d.set(300_000, 300_000); // a stricter route's channel opened
      clock.advanceTo(1_000_000);
      expect(seen).to.deep.equal(['warn@240000 left 60000', 'end@300000']);
      const e = new Deadline({ expire: () => expect.fail('cleared') }, clock);
      e.set(clock.now() + 1000, 1000);
      e.set(undefined);
      expect(clock.pending).to.equal(0);
    });

    it('a limit already inside its warning lead warns at once; one already past expires at once', function () {
      const clock = new FakeClock();
      const seen: string[] = [];
      clock.advanceTo(50_000);
      const d = new Deadline({ warn: (left) => seen.push(`warn left ${left}`), expire: () => seen.push(`end@${clock.now()}`) }, clock);
      d.set(60_000, 120_000);
      clock.advance(0);
      expect(seen).to.deep.equal(['warn left 10000']);
      clock.advanceTo(60_000);
      expect(seen).to.deep.equal(['warn left 10000', 'end@60000']);
      const late: string[] = [];
      const l = new Deadline({ expire: () => late.push('end') }, clock);
      l.set(1000, 1000);
      clock.advance(0);
      expect(late).to.deep.equal(['end']);
      d.stop();
      expect(clock.pending).to.equal(0);
    });
  });
});
