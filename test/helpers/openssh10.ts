/**
 * OpenSSH 10.0 (client and server, post-quantum mlkem768x25519-sha256 by default), unpacked from
 * Debian 12's bookworm-backports packages by test/fetch-openssh10.sh (run by the test setup): the
 * system's own OpenSSH (9.2 on Debian 12) stays what the other tests use.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = process.env.HOLDFAST_OPENSSH10 ?? '/tmp/holdfast-openssh10';

export interface OpenSsh10 {
  /** The client binary. */
  readonly ssh: string;
  /** The server binary, and the config lines it needs to find its helpers outside /usr. */
  readonly sshd: string;
  readonly sshdExtra: string[];
}

export function openssh10(): OpenSsh10 | undefined {
  const ssh = path.join(ROOT, 'usr/bin/ssh');
  const sshd = path.join(ROOT, 'usr/sbin/sshd');
  const lib = path.join(ROOT, 'usr/lib/openssh');
  if (!fs.existsSync(ssh) || !fs.existsSync(sshd) || !fs.existsSync(path.join(lib, 'sshd-session'))) return undefined;
  return { ssh, sshd, sshdExtra: [`SshdSessionPath ${lib}/sshd-session`, `SshdAuthPath ${lib}/sshd-auth`] };
}

export function requireOpenssh10(ctx: Mocha.Context): OpenSsh10 {
  const o = openssh10();
  if (!o) {
    console.log(`    SKIPPED: no OpenSSH 10 in ${ROOT} (test/fetch-openssh10.sh unpacks Debian's bookworm-backports packages there; it prints why it could not)`);
    ctx.skip();
  }
  return o!;
}
