/**
 * The usual scene: a real sshd target on 127.0.0.1, holdfast in front of it, per-user
 * authorized_keys files under ak/%u, and an ssh_config for each test identity.
 */
import fs from 'node:fs';
import path from 'node:path';
import { keygen, publicKey, removeTempDirs, tempDir } from './tmp.js';
import { startSshd, sshdAvailable, type Sshd, type SshdPlace } from './sshd.js';
import { writeSshConfig } from './ssh.js';

export interface Scene {
  readonly dir: string;
  readonly sshd: Sshd;
  /** identity name -> private key path */
  readonly keys: Record<string, string>;
  /** identity name -> ssh_config path using that identity (LogLevel ERROR) */
  readonly cfg: Record<string, string>;
  /** identity name -> ssh_config path using that identity at LogLevel INFO (shows channel open failures) */
  readonly cfgInfo: Record<string, string>;
  /** Writes DIR/ak/USER with the given lines (0600). */
  authorize(user: string, lines: string[]): void;
  /** Authorizes each user's own test key, with no options. */
  authorizeOwn(...users: string[]): void;
  /** Stops the target sshd (and its per-connection children) and removes the temporary folders. */
  stop(): Promise<void>;
}

export function requireSshd(ctx: Mocha.Context): void {
  if (!sshdAvailable()) {
    console.log('    SKIPPED: /usr/sbin/sshd is missing (Debian package openssh-server; test/ensure-system-deps.sh installs it as root)');
    ctx.skip();
  }
}

export async function makeScene(identities: string[], sshdPlace: SshdPlace = {}, sshdExtra: string[] = []): Promise<Scene> {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'ak'), { mode: 0o755 });
  const keys: Record<string, string> = {};
  const cfg: Record<string, string> = {};
  const cfgInfo: Record<string, string> = {};
  for (const id of identities) {
    keys[id] = keygen(dir, `id_${id}`);
    cfg[id] = writeSshConfig(dir, keys[id]!, `ssh_config_${id}`);
    cfgInfo[id] = path.join(dir, `ssh_config_${id}_info`);
    fs.writeFileSync(cfgInfo[id]!, fs.readFileSync(cfg[id]!, 'utf8').replace('LogLevel ERROR', 'LogLevel INFO'));
  }
  // The target accepts every test identity as root: the tests are about the jump host.
  const targetKeys = path.join(dir, 'target_authorized_keys');
  fs.writeFileSync(targetKeys, Object.values(keys).map((k) => publicKey(k)).join('\n') + '\n', { mode: 0o600 });
  const sshd = await startSshd(dir, targetKeys, sshdExtra, sshdPlace);
  const authorize = (user: string, lines: string[]) =>
    fs.writeFileSync(path.join(dir, 'ak', user), lines.join('\n') + '\n', { mode: 0o600 });
  return {
    dir,
    sshd,
    keys,
    cfg,
    cfgInfo,
    authorize,
    authorizeOwn: (...users) => users.forEach((u) => authorize(u, [publicKey(keys[u]!)])),
    stop: async () => {
      await sshd.stop();
      removeTempDirs();
    },
  };
}

/** The top of every test config: a free port on 127.0.0.1, a host key and ak/<user> key files. */
export const CONFIG_HEAD = `listen: [{address: 127.0.0.1, port: 0}]
hostKeys: [hk/key]
authorizedKeys: ak/%u
`;

/** The private half of the scene's sshd host key (for known_hosts lines: tmp.knownHostsLine). */
export function sshdHostKey(scene: { dir: string }): string {
  return path.join(scene.dir, 'sshd_host_key');
}

/** A config with one route to the scene's target sshd; `extra` is more top-level YAML. */
export function oneRouteConfig(scene: Scene, extra = ''): string {
  return `${CONFIG_HEAD}${extra}
routes:
  - name: target
    to: ["127.0.0.1:${scene.sshd.port}"]
`;
}
