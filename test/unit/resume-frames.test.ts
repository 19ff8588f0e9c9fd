import { expect } from 'chai';
import { dataFrames, FRAME, FrameError, FrameReader, jsonFrame, MAX_FRAME, offsetFrame, readOffset, type FrameType } from '../../src/resume/frames.js';
import { ReplayBuffer } from '../../src/resume/replay.js';

describe('resumable leg: framing and the replay buffer', function () {
  const collect = () => {
    const got: Array<[FrameType, string]> = [];
    return { got, reader: new FrameReader((t, p) => got.push([t, p.toString('hex')])) };
  };

  it('frames split anywhere (one byte at a time) come out in order: control frames whole, DATA as its pieces', function () {
    const bytes = Buffer.concat([...jsonFrame(FRAME.HELLO, { v: 1 }), ...dataFrames(Buffer.from('abc')), ...offsetFrame(FRAME.ACK, 2 ** 40 + 3)]);
    const { got, reader } = collect();
    for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
    // DATA comes as the pieces it arrived in (views, no copy); control frames whole.
    expect(got.map((g) => g[0])).to.deep.equal([FRAME.HELLO, FRAME.DATA, FRAME.DATA, FRAME.DATA, FRAME.ACK]);
    expect(Buffer.from(got.slice(1, 4).map((g) => g[1]).join(''), 'hex').toString()).to.equal('abc');
    expect(readOffset(Buffer.from(got[4]![1], 'hex'))).to.equal(2 ** 40 + 3);
    const whole = collect();
    whole.reader.push(bytes);
    expect(whole.got.map((g) => g[0])).to.deep.equal([FRAME.HELLO, FRAME.DATA, FRAME.ACK]);
  });

  it('an unknown type or an oversized frame is refused (FrameError), a DATA payload is cut to MAX_FRAME', function () {
    expect(() => collect().reader.push(Buffer.from([99, 0, 0, 0, 0]))).to.throw(FrameError, /unknown frame type 99/);
    const big = Buffer.alloc(5);
    big[0] = FRAME.DATA;
    big.writeUInt32BE(MAX_FRAME + 1, 1);
    expect(() => collect().reader.push(big)).to.throw(FrameError, /at most/);
    const parts = dataFrames(Buffer.alloc(MAX_FRAME * 2 + 1));
    expect(parts.map((b) => b.length)).to.deep.equal([MAX_FRAME + 5, MAX_FRAME + 5, 6]);
  });

  it('the replay buffer keeps what is not acknowledged, replays from any acknowledged offset, and is full at its limit', function () {
    const r = new ReplayBuffer(10);
    r.push(Buffer.from('hello'));
    r.push(Buffer.from('world!'));
    expect(r.full).to.equal(true);
    expect(Buffer.concat(r.from(3)!).toString()).to.equal('loworld!');
    expect(r.acked).to.equal(3);
    expect(r.full).to.equal(false);
    expect(r.from(2), 'before what was acknowledged').to.equal(undefined);
    expect(r.ack(12), 'past what was sent').to.equal(false);
    expect(r.ack(11)).to.equal(true);
    expect(r.held).to.equal(0);
  });
});
