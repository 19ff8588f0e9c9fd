import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import { stateDir } from '../../src/config/paths.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

describe('config loading', function () {
  let dir: string;
  before(function () {
    dir = tempDir();
    fs.mkdirSync(path.join(dir, 'ak'));
  });
  after(removeTempDirs);

  const load = (yaml: string, env: NodeJS.ProcessEnv = {}) =>
    loadConfigText(yaml, { displayName: 'test.yaml', baseDir: dir, embedded: false, env });

  it('fills defaults from the schema and resolves relative paths against the config folder', function () {
    const { config } = load('authorizedKeys: ak/%u\nhostKeys: [keys/hk]\nroutes: []\n');
    expect(config.listen).to.deep.equal([{ address: '0.0.0.0', port: 2222 }]);
    expect(config.authorizedKeys).to.equal(path.join(dir, 'ak/%u'));
    expect(config.hostKeys).to.deep.equal([path.join(dir, 'keys/hk')]);
    expect(config.loginGraceTimeMs).to.equal(30_000);
    expect(config.maxAuthTries).to.equal(6);
    expect(config.keepalive).to.deep.equal({ client: { interval: 30_000, countMax: 3 }, upstream: { interval: 30_000, countMax: 3 } });
  });

  it('defaults the host key to the state directory', function () {
    const { config } = load('authorizedKeys: ak/%u\nroutes: []\n', { HOLDFAST_STATE_DIR: '/srv/hf' });
    expect(config.hostKeys).to.deep.equal(['/srv/hf/ssh_host_ed25519_key']);
    expect(stateDir({ XDG_STATE_HOME: '/x' })).to.equal('/x/holdfast');
    expect(stateDir({})).to.equal(path.join(os.homedir(), '.local/state/holdfast'));
  });

  it('merges per-route keepalive over the defaults, field by field, and freezes the result', function () {
    const { config } = load(
      'authorizedKeys: ak/%u\nkeepalive:\n  client: {interval: 25, countMax: 2}\nroutes:\n  - name: a\n    to: [x]\n    keepalive:\n      client: {countMax: 5}\n      upstream: {interval: 500ms}\n',
    );
    expect(config.routes[0]!.keepalive).to.deep.equal({ client: { interval: 25_000, countMax: 5 }, upstream: { interval: 500, countMax: 3 } });
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.routes[0]!.keepalive.client)).to.equal(true);
    expect(() => {
      (config as { maxAuthTries: number }).maxAuthTries = 1;
    }).to.throw(TypeError);
  });

  it('reports every problem at once, sorted by position', function () {
    try {
      load('routes:\n  - name: a\n    to: ["x:0"]\n    users: []\nbogus: 1\nlisten: [{port: 70000}]\n');
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const lines = (err as ConfigError).problems.map((p) => `${p.line}:${p.col} ${p.path}`);
      expect(lines).to.deep.equal(['3:10 routes[0].to[0]', '4:12 routes[0].users', '5:1 bogus', '6:17 listen[0].port']);
    }
  });

  it('rejects a %u template whose folder is missing', function () {
    expect(() => load('authorizedKeys: nowhere/%u\nroutes: []\n')).to.throw(ConfigError, /authorizedKeys: folder .*nowhere does not exist/);
  });

  it('does not treat YAML 1.1 oddities as values (yes, 0644, no)', function () {
    expect(() => load('authorizedKeys: ak/%u\nlogLevel: yes\nroutes: []\n')).to.throw(ConfigError, /logLevel/);
  });

  // Issue 24: what every login is held to (StrictModes) is checked at load, so check fails first.
  it('authorizedKeys held to StrictModes at load: a group/world-writable file or %u folder is an error; one user\'s file a warning naming the user', function () {
    const file = path.join(dir, 'shared_keys');
    fs.writeFileSync(file, '', { mode: 0o600 });
    const noKeyWarnings = (yaml: string) => load(yaml).warnings.filter((w) => w.startsWith('authorizedKeys'));
    expect(noKeyWarnings('authorizedKeys: shared_keys\nroutes: []\n')).to.deep.equal([]);
    fs.chmodSync(file, 0o666);
    expect(() => load('authorizedKeys: shared_keys\nroutes: []\n')).to.throw(ConfigError, /authorizedKeys: .*shared_keys is writable by group or others \(chmod go-w .*\): every login would be refused/);
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    expect(() => load('authorizedKeys: open/%u\nroutes: []\n')).to.throw(ConfigError, /open is writable by group or others \(chmod go-w .*open\): every login would be refused/);
    fs.chmodSync(open, 0o755);
    fs.writeFileSync(path.join(open, 'alice.keys'), '', { mode: 0o600 });
    fs.writeFileSync(path.join(open, 'bob.keys'), '');
    fs.chmodSync(path.join(open, 'bob.keys'), 0o620);
    fs.writeFileSync(path.join(open, 'README'), '');
    fs.chmodSync(path.join(open, 'README'), 0o666);
    expect(noKeyWarnings('authorizedKeys: open/%u.keys\nroutes: []\n')).to.deep.equal([
      `authorizedKeys: ${path.join(open, 'bob.keys')} is writable by group or others (chmod go-w ${path.join(open, 'bob.keys')}): logins as bob are refused until it is fixed`,
    ]);
  });

  it('connectTimeout and workerStartTimeout too short to work are errors', function () {
    expect(() => load('authorizedKeys: ak/%u\nconnectTimeout: 0\nroutes: []\n')).to.throw(ConfigError, /connectTimeout: must be at least 100ms: a shorter bound fails every channel/);
    expect(() => load('authorizedKeys: ak/%u\nworkerStartTimeout: 500ms\nroutes: []\n')).to.throw(ConfigError, /workerStartTimeout: must be at least 1s/);
    expect(load('authorizedKeys: ak/%u\nconnectTimeout: 100ms\nroutes: []\n').config.connectTimeoutMs).to.equal(100);
  });
});
