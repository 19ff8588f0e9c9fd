/**
 * TCP keepalive on a live socket (src/legs/tcp-keepalive.ts), read back with getsockopt, applied once
 * and again (a reload). TCP_KEEPIDLE's getter is patches/net-keepalive+4.0.28.patch: this test fails
 * when the patch stops applying.
 */
import net from 'node:net';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { applyTcpKeepalive, tcpKeepaliveUnavailable } from '../../src/legs/tcp-keepalive.js';
import { tcpKeepaliveOptions } from '../../src/keepalive/tcp-options.js';

describe('TCP keepalive on a live socket, read back', function () {
  let server: net.Server;
  let sock: net.Socket;

  before(async function () {
    server = net.createServer((s) => s.resume());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
  });
  after(async function () {
    sock.destroy();
    await new Promise((r) => server.close(r));
  });

  it('net-keepalive loads and has the TCP_KEEPIDLE getter of patches/net-keepalive+4.0.28.patch', function () {
    expect(tcpKeepaliveUnavailable()).to.equal(null);
    const k = createRequire(import.meta.url)('net-keepalive') as { getKeepAliveTime?: (s: net.Socket) => number };
    expect(k.getKeepAliveTime, 'run npm ci: the patch adds getKeepAliveTime').to.be.a('function');
    sock.setKeepAlive(true, 13_000);
    expect(k.getKeepAliveTime!(sock)).to.equal(13_000);
  });

  it('all four options read back from the kernel; applied again (a reload) they change in place; off turns it off', function () {
    expect(applyTcpKeepalive(sock, tcpKeepaliveOptions({ interval: 0, countMax: 3 }))).to.include({ enabled: false });
    expect(applyTcpKeepalive(sock, tcpKeepaliveOptions({ interval: 7000, countMax: 4 }))).to.deep.equal({ enabled: true, idleS: 7, intervalS: 7, count: 4, userTimeoutMs: 35_000 });
    expect(applyTcpKeepalive(sock, tcpKeepaliveOptions({ interval: 1000, countMax: 3 }))).to.deep.equal({ enabled: true, idleS: 1, intervalS: 1, count: 3, userTimeoutMs: 4000 });
  });
});
