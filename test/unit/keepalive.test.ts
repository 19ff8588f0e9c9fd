/**
 * Issue 3, acceptance 1: the keepalive monitor with an injected clock.
 */
import { expect } from 'chai';
import { KeepaliveMonitor, type MonitorStats } from '../../src/keepalive/monitor.js';
import { detectionBoundMs, policyWarnings, strictest } from '../../src/keepalive/policy.js';
import { tcpKeepaliveOptions } from '../../src/keepalive/tcp-options.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(interval: number, countMax: number) {
  const clock = new FakeClock();
  const probes: number[] = [];
  const deaths: Array<{ at: number; stats: MonitorStats }> = [];
  const m = new KeepaliveMonitor({ interval, countMax }, clock, {
    probe: () => probes.push(clock.now()),
    dead: (stats) => deaths.push({ at: clock.now(), stats }),
  });
  return { clock, probes, deaths, m };
}

describe('keepalive monitor (injected clock)', function () {
  it('probes every interval while nothing is received and declares death at interval × (countMax + 1)', function () {
    const { clock, probes, deaths } = setup(1000, 3);
    clock.advanceTo(3999);
    expect(probes).to.deep.equal([1000, 2000, 3000]);
    expect(deaths).to.deep.equal([]);
    clock.advanceTo(4000);
    expect(deaths.map((d) => d.at)).to.deep.equal([4000]);
    expect(deaths[0]!.stats).to.include({ probesSent: 3, probesAnswered: 0, outstanding: 3, idleMs: 4000 });
    clock.advanceTo(20_000);
    expect(probes).to.have.length(3);
    expect(clock.pending, 'no timer left after death').to.equal(0);
  });

  it('any inbound byte resets the count and moves the schedule', function () {
    const { clock, probes, deaths, m } = setup(1000, 2);
    clock.advanceTo(2500); // probes at 1000, 2000
    m.received(); // at 2500
    clock.advanceTo(3499);
    expect(probes).to.deep.equal([1000, 2000]);
    clock.advanceTo(5499);
    expect(probes).to.deep.equal([1000, 2000, 3500, 4500]);
    expect(deaths).to.deep.equal([]);
    clock.advanceTo(5500);
    expect(deaths.map((d) => d.at)).to.deep.equal([5500]); // 2500 + 1000 × (2 + 1)
  });

  it('steady traffic means no probes at all, and costs no timer churn', function () {
    const { clock, probes, m } = setup(1000, 3);
    for (let t = 0; t < 10_000; t += 100) {
      clock.advanceTo(t);
      m.received();
    }
    expect(probes).to.deep.equal([]);
    expect(clock.pending).to.equal(1);
  });

  it('replies give round-trip times (last and smoothed)', function () {
    const { clock, m } = setup(1000, 3);
    clock.advanceTo(1000);
    m.replied(10);
    m.received();
    m.replied(20);
    const s = m.stats();
    expect(s).to.include({ probesSent: 1, probesAnswered: 2, lastRttMs: 20 });
    expect(s.srttMs).to.be.closeTo(11.25, 1e-9);
  });

  it('countMax 0 probes forever but never declares the leg dead', function () {
    const { clock, probes, deaths } = setup(1000, 0);
    clock.advanceTo(60_000);
    expect(probes).to.have.length(60);
    expect(deaths).to.deep.equal([]);
  });

  it('interval 0 turns the leg off: no probe, no death, no timer', function () {
    const { clock, probes, deaths } = setup(0, 3);
    clock.advanceTo(3_600_000);
    expect(probes).to.deep.equal([]);
    expect(deaths).to.deep.equal([]);
    expect(clock.pending).to.equal(0);
  });

  it('a stricter policy mid-flight re-plans from the last byte received, giving each late probe a full interval', function () {
    const { clock, probes, deaths, m } = setup(10_000, 3);
    clock.advanceTo(4000);
    m.setPolicy({ interval: 1000, countMax: 2 }); // lastRx = 0: the first 1 s probe is overdue: now
    clock.advanceTo(4000);
    expect(probes).to.deep.equal([4000]);
    clock.advanceTo(5999);
    expect(probes).to.deep.equal([4000, 5000]);
    expect(deaths).to.deep.equal([]);
    clock.advanceTo(6000);
    expect(deaths.map((d) => d.at)).to.deep.equal([6000]);
  });

  it('a looser policy mid-flight postpones the next probe; off stops the timer', function () {
    const { clock, probes, m } = setup(1000, 3);
    clock.advanceTo(500);
    m.setPolicy({ interval: 5000, countMax: 3 });
    clock.advanceTo(4999);
    expect(probes).to.deep.equal([]);
    clock.advanceTo(5000);
    expect(probes).to.deep.equal([5000]);
    m.setPolicy({ interval: 0, countMax: 3 });
    expect(clock.pending).to.equal(0);
    clock.advanceTo(100_000);
    expect(probes).to.deep.equal([5000]);
  });

  it('stop() clears its timer', function () {
    const { clock, probes, m } = setup(1000, 3);
    m.stop();
    expect(clock.pending).to.equal(0);
    clock.advanceTo(10_000);
    expect(probes).to.deep.equal([]);
  });
});

describe('keepalive policy', function () {
  it('detection bound is interval × (countMax + 1); none when off or countMax 0', function () {
    expect(detectionBoundMs({ interval: 30_000, countMax: 3 })).to.equal(120_000);
    expect(detectionBoundMs({ interval: 30_000, countMax: 0 })).to.equal(null);
    expect(detectionBoundMs({ interval: 0, countMax: 3 })).to.equal(null);
  });

  it('strictest: shortest interval; on a tie the shorter bound; off is loosest', function () {
    expect(strictest([{ interval: 30_000, countMax: 3 }, { interval: 15_000, countMax: 9 }])).to.deep.equal({ interval: 15_000, countMax: 9 });
    expect(strictest([{ interval: 15_000, countMax: 0 }, { interval: 15_000, countMax: 4 }])).to.deep.equal({ interval: 15_000, countMax: 4 });
    expect(strictest([{ interval: 0, countMax: 3 }, { interval: 60_000, countMax: 3 }])).to.deep.equal({ interval: 60_000, countMax: 3 });
    expect(strictest([])).to.equal(undefined);
  });

  it('warns about long, short, off, never-dead and TCP caveats', function () {
    expect(policyWarnings({ interval: 60_000, countMax: 3 }, 'client', 'ssh')).to.deep.equal([
      'client leg: interval 1m is above 45s: many NATs forget idle flows after 60-120 s',
    ]);
    expect(policyWarnings({ interval: 2000, countMax: 0 }, 'client', 'ssh')).to.deep.equal([
      'client leg: interval 2s is below 5s: probes this frequent can look like abuse',
      'client leg: countMax 0: probes are sent but a dead peer is never declared dead',
    ]);
    expect(policyWarnings({ interval: 0, countMax: 3 }, 'upstream', 'tcp')[0]).to.include('keepalive is off');
    const tcp = policyWarnings({ interval: 20_500, countMax: 200 }, 'upstream', 'tcp');
    expect(tcp[0]).to.include('applied as 21s');
    expect(tcp[1]).to.include('applied as 127');
    expect(tcp[2]).to.include('terminates TCP');
    expect(policyWarnings({ interval: 30_000, countMax: 3 }, 'client', 'ssh')).to.deep.equal([]);
  });

  it('maps a policy to TCP socket options, handling the kernel limits on purpose', function () {
    expect(tcpKeepaliveOptions({ interval: 20_000, countMax: 3 })).to.deep.equal({ enable: true, idleS: 20, intervalS: 20, count: 3, userTimeoutMs: 80_000 });
    expect(tcpKeepaliveOptions({ interval: 500, countMax: 2 })).to.deep.equal({ enable: true, idleS: 1, intervalS: 1, count: 2, userTimeoutMs: 3000 });
    expect(tcpKeepaliveOptions({ interval: 10_000, countMax: 0 })).to.deep.equal({ enable: true, idleS: 10, intervalS: 10, count: 127, userTimeoutMs: 0 });
    expect(tcpKeepaliveOptions({ interval: 1000, countMax: 500 })).to.include({ count: 127, userTimeoutMs: 128_000 });
    expect(tcpKeepaliveOptions({ interval: 0, countMax: 3 })).to.include({ enable: false });
  });
});
