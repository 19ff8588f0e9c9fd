import { expect } from 'chai';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

describe('durations', function () {
  const ok: Array<[unknown, number]> = [
    [30, 30_000], [0, 0], [0.5, 500], ['30', 30_000], ['500ms', 500], ['30s', 30_000], ['5m', 300_000],
    ['1h', 3_600_000], ['1m30s', 90_000], ['1.5s', 1500], [' 10s ', 10_000], ['1d', 86_400_000],
  ];
  for (const [input, ms] of ok) {
    it(`${JSON.stringify(input)} is ${ms} ms`, function () {
      expect(parseDuration(input)).to.deep.equal({ ok: true, ms });
    });
  }
  for (const input of ['', 'abc', '10 parsecs', '-5s', -1, '5x', 's', '1s2', NaN, Infinity, null, {}, '2d']) {
    it(`${String(JSON.stringify(input))} is refused`, function () {
      const r = parseDuration(input);
      expect(r.ok).to.equal(false);
    });
  }
  it('formats back the way people write it', function () {
    expect(formatDuration(30_000)).to.equal('30s');
    expect(formatDuration(90_000)).to.equal('1m30s');
    expect(formatDuration(500)).to.equal('500ms');
    expect(formatDuration(0)).to.equal('0s');
  });
});
