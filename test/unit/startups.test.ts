import { expect } from 'chai';
import { StartupGate, type Admission, type StartupLimits } from '../../src/startups.js';
import { SharedStartups, StartupLedger } from '../../src/daemon/shared-startups.js';
import type { FromWorker, ToWorker } from '../../src/daemon/messages.js';

const LIMITS: StartupLimits = { start: 10, rate: 30, full: 100, perSource: 2, v4Bits: 24, v6Bits: 64 };

function admitted(a: Admission): () => void {
  if (!a.ok) expect.fail(`refused: ${a.why}`);
  return a.release;
}

describe('startup limits: sshd MaxStartups and PerSourceMaxStartups (src/startups.ts)', function () {
  it('counts per source network (/24, /64) and gives a slot back once, however often release is called', function () {
    const gate = new StartupGate(() => 0.999);
    const r1 = admitted(gate.admit('192.0.2.1', LIMITS));
    admitted(gate.admit('192.0.2.200', LIMITS));
    expect(gate.admit('192.0.2.77', LIMITS)).to.deep.equal({ ok: false, why: 'perSourceMaxStartups 2 reached for 192.0.2.0/24', pending: 2 });
    admitted(gate.admit('198.51.100.1', LIMITS));
    admitted(gate.admit('2001:db8::1', LIMITS));
    admitted(gate.admit('2001:db8::ffff', LIMITS));
    expect(gate.admit('2001:db8:0:0:1::', LIMITS)).to.deep.include({ ok: false, why: 'perSourceMaxStartups 2 reached for 2001:db8:0:0:0:0:0:0/64' });
    r1();
    r1();
    expect(gate.pendingStartups).to.equal(4);
    admitted(gate.admit('192.0.2.77', LIMITS));
    expect(gate.admit('192.0.2.78', LIMITS).ok, 'the second release gave nothing more back').to.equal(false);
  });

  it('start:rate:full: refused with probability rate % at start, rising to 100 % at full (the random source decides)', function () {
    let roll = 0.5;
    const gate = new StartupGate(() => roll);
    const limits: StartupLimits = { start: 2, rate: 40, full: 4, perSource: 0, v4Bits: 32, v6Bits: 128 };
    for (let i = 0; i < 2; i++) admitted(gate.admit(`10.0.0.${i}`, limits));
    roll = 0.39; // p = 40 % at 2 pending
    expect(gate.admit('10.0.1.1', limits)).to.deep.include({ ok: false, why: 'maxStartups 2:40:4 (2 unauthenticated connections, refused with probability 40 %)' });
    roll = 0.41;
    admitted(gate.admit('10.0.1.2', limits));
    roll = 0.69; // p = 70 % at 3 pending
    expect(gate.admit('10.0.1.3', limits).ok).to.equal(false);
    roll = 0.71;
    admitted(gate.admit('10.0.1.4', limits));
    roll = 0.999;
    expect(gate.admit('10.0.1.5', limits)).to.deep.equal({ ok: false, why: 'maxStartups full (4 unauthenticated connections)', pending: 4 });
  });

  it('the limits of each call apply (a reload changes the next admission, not the ones held)', function () {
    const gate = new StartupGate();
    const one: StartupLimits = { ...LIMITS, perSource: 1 };
    admitted(gate.admit('192.0.2.1', LIMITS));
    admitted(gate.admit('192.0.2.2', LIMITS));
    expect(gate.admit('198.51.100.9', { ...one, start: 2, full: 2 }).ok).to.equal(false);
    admitted(gate.admit('198.51.100.9', one));
  });
});

describe('one startup gate for every worker (src/daemon/shared-startups.ts)', function () {
  const one: StartupLimits = { ...LIMITS, perSource: 1 };
  const request = (id: number, ip: string, limits = one) => ({ holdfast: 'startup' as const, id, ip, limits });

  it('the primary counts every worker together and gives back what a worker held when it exits', function () {
    const ledger = new StartupLedger();
    expect(ledger.request(1, request(1, '192.0.2.5'))).to.deep.equal({ holdfast: 'startup-verdict', id: 1, ok: true, pending: 1 });
    expect(ledger.request(2, request(1, '192.0.2.6'))).to.deep.equal({ holdfast: 'startup-verdict', id: 1, ok: false, why: 'perSourceMaxStartups 1 reached for 192.0.2.0/24', pending: 1 });
    ledger.end(2, 1); // never admitted: nothing to give back
    ledger.end(1, 99); // unknown id
    expect(ledger.pending).to.equal(1);
    ledger.end(1, 1);
    expect(ledger.pending).to.equal(0);
    expect(ledger.request(2, request(2, '192.0.2.6')).ok).to.equal(true);
    expect(ledger.request(2, request(3, '198.51.100.1')).ok).to.equal(true);
    expect(ledger.request(3, request(1, '203.0.113.1')).ok).to.equal(true);
    expect(ledger.workerGone(2)).to.equal(2);
    expect(ledger.workerGone(2)).to.equal(0);
    expect(ledger.pending).to.equal(1);
    expect(ledger.request(1, request(2, '192.0.2.7')).ok, 'the slot worker 2 held is free').to.equal(true);
  });

  /** Two workers' SharedStartups wired to one ledger through an asynchronous channel, as IPC is. */
  function cluster(answer = true) {
    const ledger = new StartupLedger();
    const sent: FromWorker[] = [];
    const workers = [1, 2].map((id) => {
      const w: SharedStartups = new SharedStartups((m) => {
        sent.push(m);
        setImmediate(() => {
          if (m.holdfast === 'startup' && answer) w.verdict(ledger.request(id, m) as Extract<ToWorker, { holdfast: 'startup-verdict' }>);
          else if (m.holdfast === 'startup-end') ledger.end(id, m.id);
        });
      }, 100);
      return w;
    });
    return { ledger, workers, sent };
  }

  it('workers ask the primary: the second worker is refused while the first holds the source, admitted once it ends', async function () {
    const { ledger, workers } = cluster();
    const a = await workers[0]!.admit('192.0.2.5', one);
    const b = await workers[1]!.admit('192.0.2.9', one);
    expect(b).to.deep.equal({ ok: false, why: 'perSourceMaxStartups 1 reached for 192.0.2.0/24', pending: 1 });
    admitted(a)();
    admitted(a)();
    await new Promise((r) => setImmediate(r));
    expect(ledger.pending).to.equal(0);
    const c = await workers[1]!.admit('192.0.2.9', one);
    expect(c.ok).to.equal(true);
    expect(ledger.pending).to.equal(1);
  });

  it('a primary that does not answer: refused after the wait, and the request is ended so a late admission is given back', async function () {
    const { ledger, workers, sent } = cluster(false);
    const t0 = Date.now();
    const a = await workers[0]!.admit('192.0.2.5', one);
    expect(a).to.deep.equal({ ok: false, why: 'the primary process did not answer within 100 ms', pending: -1 });
    expect(Date.now() - t0).to.be.within(90, 1000);
    expect(sent.map((m) => m.holdfast)).to.deep.equal(['startup', 'startup-end']);
    // The verdict arriving now changes nothing.
    workers[0]!.verdict({ holdfast: 'startup-verdict', id: 1, ok: true, pending: 1 });
    expect(ledger.pending).to.equal(0);
  });

  it('a closed IPC channel refuses at once', async function () {
    const w = new SharedStartups(() => {
      throw new Error('ERR_IPC_CHANNEL_CLOSED');
    });
    expect(await w.admit('192.0.2.5', one)).to.deep.equal({ ok: false, why: 'the primary process is gone', pending: -1 });
  });
});
