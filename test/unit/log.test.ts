import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../src/log.js';

function capture(json: boolean) {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger({ json, stream, level: 'info' }), out };
}

describe('logs', function () {
  it('JSON lines (journald): time, level, event, then the fields', function () {
    const { log, out } = capture(true);
    log.info('session-close', { user: 'alice', bytesUp: 3 });
    log.debug('hidden', {});
    const line = JSON.parse(out.join('')) as Record<string, unknown>;
    expect(Object.keys(line)).to.deep.equal(['time', 'level', 'event', 'user', 'bytesUp']);
    expect(line).to.include({ level: 'info', event: 'session-close', user: 'alice', bytesUp: 3 });
    expect(out).to.have.length(1);
  });

  it('readable text on a TTY: event then key=value, quoting what needs it', function () {
    const { log, out } = capture(false);
    log.warn('channel-refused', { user: 'bob', why: 'no route allows it', dsts: ['a:22'] });
    expect(out.join('')).to.match(/^\S+Z warn  channel-refused user=bob why="no route allows it" dsts=\["a:22"\]\n$/);
  });
});
