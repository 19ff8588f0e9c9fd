/**
 * The benchmark's lab, on 127.0.0.1: one target sshd, and two jump hosts in front of it: holdfast
 * and an OpenSSH sshd configured as a jump host. Same client (the OpenSSH ssh), same key, same
 * cipher on every leg. Everything is started here and stopped by `stop()`.
 */
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startSshd, descendants, type Sshd } from '../test/helpers/sshd.js';
import { startHoldfast, type Holdfast, type LogLine } from '../test/helpers/holdfast.js';
import { keygen, knownHostsLine, publicKey, tempDir, removeTempDirs } from '../test/helpers/tmp.js';
import { CONFIG_HEAD, sshdHostKey } from '../test/helpers/fixture.js';
import { writeSshConfig } from '../test/helpers/ssh.js';
import { signCertificate } from '../test/helpers/certs.js';
import { freePort } from '../test/helpers/ports.js';

export const CIPHER = 'aes128-gcm@openssh.com';

export type JumpName = 'holdfast' | 'sshd';

export interface Jump {
  readonly name: JumpName;
  readonly port: number;
  /** The jump host's processes now (sshd forks per connection). */
  pids(): number[];
  /** holdfast's admin listener (/metrics), HOST:PORT. */
  readonly admin?: string;
}

export interface Lab {
  readonly dir: string;
  readonly target: Sshd;
  readonly jumps: Record<JumpName, Jump>;
  /** The holdfast running now (see restartHoldfast). */
  readonly holdfast: Holdfast;
  /** A fresh holdfast process (same config, new port): memory measured from a clean start. */
  /** `extraYaml`: top-level keys added to the config (e.g. `workers: 2`). */
  restartHoldfast(extraYaml?: string): Promise<void>;
  /** Log lines with this event, over every holdfast process of the lab. */
  holdfastEvents(event: string, where?: (l: LogLine) => boolean): number;
  readonly jumpSshd: Sshd;
  /** ssh_config with the bench key and the cipher, for ssh -F (ProxyJump children get it too). */
  readonly sshConfig: string;
  /** The same, logging in with a user certificate for the bench key (every host trusts its CA). */
  readonly sshConfigCert: string;
  readonly key: string;
  /** A TCP server that accepts and holds connections: the destination of the idle sessions. */
  readonly sink: { port: number; count(): number; closeAll(): void };
  stop(): Promise<void>;
}

export interface LabOptions {
  /** Keepalive interval on the client leg of both jump hosts (issue: 30 s). */
  readonly clientKeepalive?: string;
  /** Options for holdfast's node, e.g. --cpu-prof for a profile. */
  readonly holdfastNodeArgs?: string[];
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const dir = tempDir('holdfast-bench-');
  const key = keygen(dir, 'id_bench');
  const pub = publicKey(key);
  const auth = path.join(dir, 'authorized_keys');
  fs.writeFileSync(auth, `${pub}\n`, { mode: 0o600 });
  fs.mkdirSync(path.join(dir, 'ak'));
  fs.writeFileSync(path.join(dir, 'ak', 'bench'), `${pub}\n`, { mode: 0o600 });
  // holdfast's own key for gateway mode (the long-fat-link row), accepted by the target.
  const gwKey = keygen(dir, 'holdfast_gateway_key');
  fs.appendFileSync(auth, `${publicKey(gwKey)}\n`);

  // A user CA that the target, sshd and holdfast all trust, and a certificate for the bench key (a
  // file name ssh does not load by itself: only the setup row with certificates uses it).
  const userCa = keygen(dir, 'user_ca');
  const cert = signCertificate(dir, userCa, key, { name: 'id_bench_cert', id: 'bench', principals: 'bench,root' });
  const trustCa = `TrustedUserCAKeys ${userCa}.pub`;

  const ka = opts.clientKeepalive ?? '30s';
  const kaSeconds = Math.max(1, Math.round(parseFloat(ka)));
  const target = await startSshd(dir, auth, [`Ciphers ${CIPHER}`, 'MaxStartups 10000:30:10000', trustCa]);
  // sshd as the jump host: what operators run today. ClientAlive* matches holdfast's client leg.
  const jumpSshd = await startSshd(dir, auth, [
    `Ciphers ${CIPHER}`,
    'AllowTcpForwarding yes',
    `ClientAliveInterval ${kaSeconds}`,
    'ClientAliveCountMax 3',
    'MaxStartups 10000:30:10000',
    'LoginGraceTime 120',
    trustCa,
  ]);
  fs.writeFileSync(path.join(dir, 'known_hosts'), `${knownHostsLine(sshdHostKey({ dir }), target.port)}\n`);
  const adminPort = await freePort();
  const holdfastYaml = (extra = '') =>
    `${CONFIG_HEAD}${extra}trustedUserCAKeys: user_ca.pub
admin: { address: 127.0.0.1, port: ${adminPort} }
maxChannels: 100
maxStartups: "10000:30:10000"
perSourceMaxStartups: none
keepalive:
  client: { interval: ${ka}, countMax: 3 }
  upstream: { interval: 30s, countMax: 3 }
routes:
  - name: gateway
    to: ["127.0.0.1:${target.port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
  - name: lab
    to: ["127.0.0.1:*"]
`;
  let holdfast = await startHoldfast(dir, holdfastYaml(), { nodeArgs: opts.holdfastNodeArgs ?? [] });
  // Log lines of the holdfast processes restartHoldfast replaced, for holdfastEvents.
  const past: LogLine[] = [];
  const sshConfig = writeSshConfig(dir, key, 'ssh_config', []);
  fs.appendFileSync(sshConfig, `  Ciphers ${CIPHER}\n  ControlMaster no\n  ControlPath none\n`);
  const sshConfigCert = writeSshConfig(dir, key, 'ssh_config_cert', []);
  fs.appendFileSync(sshConfigCert, `  CertificateFile ${cert}\n  Ciphers ${CIPHER}\n  ControlMaster no\n  ControlPath none\n`);

  const held = new Set<net.Socket>();
  const sink = net.createServer((s) => {
    s.setNoDelay(true);
    held.add(s);
    s.on('error', () => {});
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));

  const jumps: Record<JumpName, Jump> = {
    holdfast: {
      name: 'holdfast',
      get port() {
        return holdfast.port;
      },
      // The primary and its workers.
      pids: () => [holdfast.proc.pid!, ...descendants(holdfast.proc.pid!, 100_000)],
      admin: `127.0.0.1:${adminPort}`,
    },
    sshd: { name: 'sshd', port: jumpSshd.port, pids: () => [jumpSshd.proc.pid!, ...descendants(jumpSshd.proc.pid!, 100_000)] },
  };
  return {
    dir,
    target,
    jumps,
    get holdfast() {
      return holdfast;
    },
    async restartHoldfast(extraYaml = '') {
      past.push(...holdfast.logs);
      await holdfast.stop();
      holdfast = await startHoldfast(dir, holdfastYaml(extraYaml), { nodeArgs: opts.holdfastNodeArgs ?? [] });
      // With several workers, wait until every one serves.
      const want = Number(/workers: (\d+)/.exec(extraYaml)?.[1] ?? 1);
      await holdfast.waitForLog(() => holdfast.logs.filter((l) => l.event === 'worker-started').length >= want, 15_000, `${want} workers`);
    },
    holdfastEvents: (event, where = () => true) => [...past, ...holdfast.logs].filter((l) => l.event === event && where(l)).length,
    jumpSshd,
    sshConfig,
    sshConfigCert,
    key,
    sink: {
      port: (sink.address() as net.AddressInfo).port,
      count: () => held.size,
      closeAll: () => {
        for (const s of held) s.destroy();
      },
    },
    async stop() {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => sink.close(() => r()));
      await holdfast.stop();
      await jumpSshd.stop();
      await target.stop();
      removeTempDirs();
    },
  };
}

/** Versions for the machine description. */
export function machine(): Record<string, string> {
  // ssh -V and sshd -V print on stderr.
  const sh = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  };
  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  const cores = String(fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? '?');
  return {
    cpu,
    cores,
    kernel: sh('uname', ['-r']),
    node: process.version,
    openssh: sh('ssh', ['-V']),
    sshd: sh('/usr/sbin/sshd', ['-V']).split('\n').find((l) => l.includes('OpenSSH')) ?? 'unknown',
    cipher: CIPHER,
  };
}
