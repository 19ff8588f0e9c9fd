import { expect } from 'chai';
import { CrashLog, replaceDelayMs } from '../../src/daemon/crash-backoff.js';

describe('replacing a crashed worker (src/daemon/crash-backoff.ts)', function () {
  it('waits only after repeated crashes while other workers still serve; never when none is left serving', function () {
    expect(replaceDelayMs(1, 1)).to.equal(0);
    expect(replaceDelayMs(3, 1)).to.equal(0);
    expect(replaceDelayMs(4, 1)).to.equal(5000);
    expect(replaceDelayMs(40, 3)).to.equal(5000);
    // The last serving worker crashed: a backoff now would leave nobody to serve anyone.
    expect(replaceDelayMs(4, 0)).to.equal(0);
    expect(replaceDelayMs(40, 0)).to.equal(0);
  });

  it('counts only the crashes of the last 10 s', function () {
    const log = new CrashLog();
    const t0 = 1_000_000;
    expect([0, 1, 2, 3].map((i) => log.crashed(1, t0 + i * 1000))).to.deep.equal([0, 0, 0, 5000]);
    // 11 s after the first: three of the four are still inside the window, plus this one.
    expect(log.crashed(1, t0 + 11_000)).to.equal(5000);
    // 30 s on: the window holds this crash alone.
    expect(log.crashed(1, t0 + 30_000)).to.equal(0);
    expect(log.crashed(0, t0 + 30_001)).to.equal(0);
  });
});
