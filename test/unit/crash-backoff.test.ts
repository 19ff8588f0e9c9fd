import { expect } from 'chai';
import { replaceDelayMs } from '../../src/daemon/primary.js';

describe('replacing a crashed worker (src/daemon/primary.ts)', function () {
  it('waits only after repeated crashes while other workers still serve; never when none is left serving', function () {
    expect(replaceDelayMs(1, 1)).to.equal(0);
    expect(replaceDelayMs(3, 1)).to.equal(0);
    expect(replaceDelayMs(4, 1)).to.equal(5000);
    expect(replaceDelayMs(40, 3)).to.equal(5000);
    // The last serving worker crashed: a backoff now would leave nobody to serve anyone.
    expect(replaceDelayMs(4, 0)).to.equal(0);
    expect(replaceDelayMs(40, 0)).to.equal(0);
  });
});
