/**
 * holdfast relies on a few private corners of ssh2 (pinned to an exact version). These tests fail
 * loudly when an ssh2 upgrade moves them; see src/ssh/server-adapter.ts and ../shared/ssh2-notes.md.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Server, ssh2Constants, nativeCryptoAvailable } from '../../src/ssh/ssh2.js';
import { disableBuiltinKeepalive, serverAlgorithms } from '../../src/ssh/server-adapter.js';
import { ROOT } from '../helpers/holdfast.js';

describe('ssh2 internals holdfast depends on', function () {
  it('ssh2 is pinned to an exact version, and it is the installed one', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.ssh2).to.match(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/package.json'), 'utf8')) as { version: string };
    expect(installed.version).to.equal(pkg.dependencies.ssh2);
  });

  it('the native crypto binding is built (AES-GCM is ~7x slower without it)', function () {
    expect(nativeCryptoAvailable(), 'run: npm rebuild ssh2 (needs g++, make, python3)').to.equal(true);
  });

  it('the native binding survives a GC of 5,000 AES-GCM ciphers (patch: Nan::ObjectWrap; node::ObjectWrap aborts on Node 24+)', function () {
    this.timeout(30000);
    // Since Node 24, node::ObjectWrap's destructor removes an environment cleanup hook and aborts the
    // process when V8 runs the weak callback with no context entered (3,000 ciphers crash Node 24.21
    // every time). The patch derives the binding's classes from Nan::ObjectWrap; postinstall
    // (scripts/ssh2-binding.mjs) builds the binding again from the patched source. On Node 20 and 22
    // node::ObjectWrap has no hook, so this guard bites on Node 24 and 26 (both run in CI).
    const built = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node'));
    expect(built.includes('RemoveEnvironmentCleanupHook'), 'binding built from the unpatched source: run npm rebuild ssh2').to.equal(false);
    const script = `
      const crypto = require('node:crypto');
      const { createCipher, CIPHER_INFO, bindingAvailable } = require('ssh2/lib/protocol/crypto.js');
      if (!bindingAvailable) process.exit(3);
      const info = CIPHER_INFO['aes128-gcm@openssh.com'];
      const kept = [];
      for (let i = 0; i < 5000; i++) {
        const c = createCipher({ outbound: { onWrite() {}, cipherInfo: info, cipherKey: crypto.randomBytes(16), cipherIV: crypto.randomBytes(12), seqno: 0 } });
        if (i % 10 === 0) kept.push(c);
      }
      console.log('made 5000, kept ' + kept.length);`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 25000 });
    expect(r.stderr.split('\n').slice(0, 3).join('\n'), 'stderr').to.not.include('Assertion failed');
    expect({ status: r.status, signal: r.signal, stdout: r.stdout.trim() }).to.deep.equal({ status: 0, signal: null, stdout: 'made 5000, kept 500' });
  });

  it('Server.KEEPALIVE_CLIENT_* statics exist and disableBuiltinKeepalive zeroes the interval', function () {
    const S = Server as unknown as Record<string, number>;
    expect(S.KEEPALIVE_CLIENT_INTERVAL).to.be.a('number');
    expect(S.KEEPALIVE_CLIENT_COUNT_MAX).to.be.a('number');
    disableBuiltinKeepalive();
    expect(S.KEEPALIVE_CLIENT_INTERVAL).to.equal(0);
  });

  it('server.js still reads those statics and still has the private hooks we call', function () {
    const src = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/server.js'), 'utf8');
    expect(src).to.include('Server.KEEPALIVE_CLIENT_INTERVAL');
    expect(src).to.include("proto.channelOpenFail(info.sender, reason, '')");
    expect(src).to.include('this._sock = socket');
    const proto = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/protocol/Protocol.js'), 'utf8');
    expect(proto).to.match(/channelOpenFail\(remote, reason, desc\)/);
    expect(proto).to.match(/\n {2}disconnect\(reason, description\)/); // patches/ssh2+1.17.0.patch
    expect(proto).to.match(/\n {2}ping\(\)/);
  });

  it('gateway mode: the private hooks that open an agent channel to the client, and the server Session events we relay', function () {
    const src = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/server.js'), 'utf8');
    // openAgentChannel (src/ssh/forwarded-agent.ts) does what server.js's openChannel() does.
    expect(src).to.include('const localChan = self._chanMgr.add(wrapper);');
    expect(src).to.match(/CHANNEL_OPEN_CONFIRMATION: \(p, info\) => \{\s*const channel = this\._chanMgr\.get\(info\.recipient\);\s*if \(typeof channel !== 'function'\)/);
    const proto = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/protocol/Protocol.js'), 'utf8');
    expect(proto).to.match(/\n {2}openssh_authAgent\(chan, initWindow, maxPacket\)/);
    // Without an 'sftp' listener a subsystem "sftp" is handed over as a raw channel (relayed as bytes).
    expect(src).to.include("if (data === 'sftp') {\n                if (listenerCount(session, 'sftp')) {");
    // Client session channels emit 'close' after stdout's 'end', with the exit status or signal.
    const utils = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/utils.js'), 'utf8');
    expect(utils).to.include("channel.emit('close', exit.code, exit.signal, exit.dump, exit.desc);");
    // JumpChannel: the client's CLOSE marks incoming 'closed' and ends our writable side; a server
    // channel emits 'close' only after its readable side has ended.
    expect(utils).to.include("channel.incoming.state = 'closed';");
    expect(utils).to.match(/if \(writeState && !writeState\.ending && !writeState\.finished && !dead\)\s*channel\.end\(\);/);
    expect(utils).to.include("channel.once('end', () => channel.emit('close'));");
  });

  it('channel windows: the state the growing window reads and the adjust it sends', function () {
    const ch = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/Channel.js'), 'utf8');
    expect(ch).to.include('const MAX_WINDOW = 2 * 1024 * 1024;');
    expect(ch).to.include('self._client._protocol.channelWindowAdjust(self.outgoing.id, amt);');
    const src = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/server.js'), 'utf8');
    // CHANNEL_DATA: window taken first, then push (our 'data' listener runs inside push), then
    // ssh2's own top-up only when the window is at or below its threshold.
    // (The patch copies data that will wait out of its read buffer between the two.)
    expect(src).to.match(/channel\.incoming\.window -= data\.length;[\s\S]{0,600}?if \(channel\.push\(data\) === false\) \{\s*channel\._waitChanDrain = true;\s*return;\s*\}\s*if \(channel\.incoming\.window <= WINDOW_THRESHOLD\)/);
  });

  it('the ssh2 patch: an adjust counts what waits unread; data that will wait is copied out of its read buffer', function () {
    const ch = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/Channel.js'), 'utf8');
    expect(ch).to.include('const held = (self.server ? self.readableLength : 0);');
    expect(ch).to.include('const amt = Math.max(MAX_WINDOW - self.incoming.window - held, atLeast);');
    const src = fs.readFileSync(path.join(ROOT, 'node_modules/ssh2/lib/server.js'), 'utf8');
    expect(src).to.match(/if \(channel\.readableLength > 0\s*&& data\.buffer\.byteLength > data\.length\) \{\s*data = Buffer\.from\(data\);/);
  });

  it('algorithms: no group-exchange KEX (unimplemented server-side), no SHA-1 ssh-rsa host key signatures', function () {
    const a = serverAlgorithms();
    expect(a.kex).to.include('curve25519-sha256');
    expect(a.kex.filter((k) => k.includes('group-exchange'))).to.deep.equal([]);
    expect(a.serverHostKey).to.not.include('ssh-rsa');
    expect(ssh2Constants.CHANNEL_OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED).to.equal(1);
    expect(ssh2Constants.CHANNEL_OPEN_FAILURE.CONNECT_FAILED).to.equal(2);
  });
});

describe('host key generation', function () {
  it('every generated host key loads and signs (ssh2 generateKeyPairSync makes a bad one ~3 in 1,000)', async function () {
    this.timeout(30_000);
    const { generateHostKey } = await import('../../src/ssh/host-keys.js');
    const { utils } = await import('../../src/ssh/ssh2.js');
    for (let i = 0; i < 1500; i++) {
      const pair = generateHostKey();
      const k = utils.parseKey(pair.private);
      expect(k, `key ${i}`).to.not.be.instanceOf(Error);
    }
  });
});
