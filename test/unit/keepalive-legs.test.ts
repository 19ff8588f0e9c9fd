/**
 * src/keepalive/: the policy set a leg serves and the one SSH-leg keepalive (client, bastion and
 * gateway legs), on a fake clock with a fake transport: no ssh2 connection.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { PolicySet } from '../../src/keepalive/policy-set.js';
import { SshLegKeepalive } from '../../src/keepalive/ssh-leg.js';
import type { KeepalivePolicy } from '../../src/keepalive/policy.js';
import type { MonitorStats } from '../../src/keepalive/monitor.js';
import { timeoutReport, tcpTimeoutReport } from '../../src/keepalive/report.js';
import { FakeClock } from '../helpers/fake-clock.js';

const P = (interval: number, countMax = 3): KeepalivePolicy => ({ interval, countMax });

describe('policy set (src/keepalive/policy-set.ts)', function () {
  it('runs the strictest policy of its entries: shortest interval, on a tie the shorter bound, off loosest', function () {
    const set = new PolicySet<string>();
    set.add('a', P(30_000), 'slow');
    set.add('b', P(10_000, 5), 'fast');
    set.add('c', P(10_000, 2), 'fast-tight');
    set.add('d', P(0), 'off');
    expect(set.current()).to.deep.equal(P(10_000, 2));
    expect(set.labels()).to.deep.equal(['slow', 'fast', 'fast-tight', 'off']);
  });

  it('falls back to the default (read at each use) when empty; undefined without a fallback', function () {
    let def = P(30_000);
    const set = new PolicySet<string>(() => def);
    expect(set.current()).to.deep.equal(P(30_000));
    def = P(20_000); // a reload changed the default
    expect(set.current()).to.deep.equal(P(20_000));
    set.add('x', P(45_000), 'r');
    expect(set.current(), 'a channel route is used even when looser than the default').to.deep.equal(P(45_000));
    expect(new PolicySet<string>().current()).to.equal(undefined);
  });

  it('tells its owner when the policy in force changes, and only then', function () {
    const seen: Array<KeepalivePolicy | undefined> = [];
    const set = new PolicySet<string>(() => P(30_000), (p) => seen.push(p));
    set.add('a', P(30_000), 'same-as-default'); // no change
    set.add('b', P(5_000), 'fast'); // stricter
    set.add('c', P(20_000), 'mid'); // no change (b is stricter)
    set.remove('b'); // back to c
    set.remove('zzz'); // unknown key: nothing
    set.remove('c');
    set.remove('a'); // back to the default, same as a: no change
    expect(seen).to.deep.equal([P(5_000), P(20_000), P(30_000)]);
    expect(set.size).to.equal(0);
  });
});

class FakeTransport extends EventEmitter {}

function leg(policy: KeepalivePolicy, answer: 'now' | 'later' | 'never' = 'now') {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const probesAt: number[] = [];
  const deaths: Array<{ at: number; stats: MonitorStats; policy: KeepalivePolicy }> = [];
  const waiting: Array<() => void> = [];
  const k = new SshLegKeepalive(
    policy,
    transport,
    (onReply) => {
      probesAt.push(clock.now());
      if (answer === 'now') onReply();
      else if (answer === 'later') waiting.push(onReply);
    },
    { dead: (stats, p) => deaths.push({ at: clock.now(), stats, policy: p }) },
    clock,
  );
  return { clock, transport, probesAt, deaths, waiting, k };
}

describe('SSH-leg keepalive (src/keepalive/ssh-leg.ts), fake clock and transport', function () {
  it('probes after interval of silence; a reply counts as an answer with its RTT, bytes count as alive', function () {
    const { clock, transport, probesAt, waiting, k, deaths } = leg(P(1000, 3), 'later');
    clock.advanceTo(1000);
    expect(probesAt).to.deep.equal([1000]);
    clock.advanceTo(1040);
    waiting.shift()!(); // the reply after 40 ms
    transport.emit('data'); // and the reply's bytes
    expect(k.stats()).to.include({ probesSent: 1, probesAnswered: 1, lastRttMs: 40, outstanding: 0 });
    clock.advanceTo(2039);
    expect(probesAt, 'the schedule restarts at the last byte').to.deep.equal([1000]);
    clock.advanceTo(2040);
    expect(probesAt).to.deep.equal([1000, 2040]);
    expect(deaths).to.deep.equal([]);
  });

  it('declares a silent leg dead at interval × (countMax + 1) with the policy in force, then stops listening', function () {
    const { clock, transport, deaths, probesAt } = leg(P(500, 2), 'never');
    clock.advanceTo(1499);
    expect(deaths).to.deep.equal([]);
    clock.advanceTo(1500);
    expect(deaths).to.have.length(1);
    expect(deaths[0]!.policy).to.deep.equal(P(500, 2));
    expect(deaths[0]!.stats).to.include({ probesSent: 2, probesAnswered: 0, idleMs: 1500 });
    expect(probesAt).to.deep.equal([500, 1000]);
    expect(transport.listenerCount('data'), 'the data listener is gone').to.equal(0);
    expect(clock.pending, 'no timer left').to.equal(0);
  });

  it('steady traffic: no probes at all', function () {
    const { clock, transport, probesAt } = leg(P(1000, 3));
    for (let t = 300; t <= 10_000; t += 300) {
      clock.advanceTo(t);
      transport.emit('data');
    }
    expect(probesAt).to.deep.equal([]);
  });

  it('setPolicy re-plans from the last byte (stricter at once; off stops probing)', function () {
    const { clock, k, probesAt } = leg(P(10_000, 3));
    clock.advanceTo(3000);
    k.setPolicy(P(1000, 3)); // last byte at 0: due at 1000, i.e. now
    clock.advanceTo(3000);
    expect(probesAt).to.deep.equal([3000]);
    k.setPolicy(P(0));
    clock.advanceTo(60_000);
    expect(probesAt).to.deep.equal([3000]);
    expect(k.policy).to.deep.equal(P(0));
  });

  it('stop() releases the timer and the data listener; a late reply is ignored', function () {
    const { clock, transport, k, waiting } = leg(P(1000, 3), 'later');
    clock.advanceTo(1000);
    k.stop();
    k.stop(); // idempotent
    waiting.shift()!();
    expect(k.stats().probesAnswered).to.equal(0);
    expect(transport.listenerCount('data')).to.equal(0);
    expect(clock.pending).to.equal(0);
  });
});

describe('keepalive timeout reports (src/keepalive/report.ts)', function () {
  it('one shape for every leg and layer', function () {
    const s = { probesSent: 3, probesAnswered: 1, lastRttMs: 12.3456, idleMs: 4000.4 };
    expect(timeoutReport('client', 'ssh', P(1000, 3), s)).to.deep.equal({
      reason: 'client-keepalive-timeout', leg: 'client', layer: 'ssh', interval: 1000, countMax: 3, probesSent: 3, probesAnswered: 1, lastRttMs: 12.35, idleMs: 4000,
    });
    expect(timeoutReport('upstream', 'ssh', P(1000, 3), s).reason).to.equal('upstream-keepalive-timeout');
  });
  it('the TCP leg reports the kernel probe count and no RTT', function () {
    expect(tcpTimeoutReport(P(1500, 200), 9000)).to.deep.equal({
      reason: 'upstream-keepalive-timeout', leg: 'upstream', layer: 'tcp', interval: 1500, countMax: 200, probesSent: 127, probesAnswered: 0, lastRttMs: null, idleMs: 9000,
    });
  });
});
