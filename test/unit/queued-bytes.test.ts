import { expect } from 'chai';
import { QueuedBytes, type QueuedBytesSource } from '../../src/queued-bytes.js';

describe('queued bytes per user and per worker (maxQueuedMiBPerUser, maxQueuedMiB)', function () {
  it('sums every session by user, at most once a second', function () {
    let t = 0;
    const held = new Map<string, number>([['a1', 10], ['a2', 5], ['b', 7]]);
    const s = (id: string, user: string | undefined): QueuedBytesSource => ({ user, registry: { queuedBytes: () => held.get(id) ?? 0 } });
    const sessions = [s('a1', 'alice'), s('a2', 'alice'), s('b', 'bob'), s('x', undefined)];
    const q = new QueuedBytes(() => sessions, () => t);
    expect(q.of('alice')).to.deep.equal({ user: 15, process: 22 });
    expect(q.of('carol')).to.deep.equal({ user: 0, process: 22 });
    held.set('b', 100);
    t = 999;
    expect(q.of('bob')).to.deep.equal({ user: 7, process: 22 });
    t = 1000;
    expect(q.of('bob')).to.deep.equal({ user: 100, process: 115 });
  });

  it('detached resumable sessions (outside any connection) count for their user and the process', function () {
    const q = new QueuedBytes(() => [], () => 0, () => [{ user: 'alice', queuedBytes: 4 }, { user: 'alice', queuedBytes: 0 }, { user: 'bob', queuedBytes: 3 }]);
    expect(q.of('alice')).to.deep.equal({ user: 4, process: 7 });
  });
});
