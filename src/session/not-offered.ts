/**
 * What a jump host does not offer its users, refused with a reason. A session channel asked of
 * holdfast itself (`ssh holdfast`, a command, sftp): there is no shell here; the channel is accepted
 * so the user reads one line saying what to do instead, then it exits 1; it counts against
 * maxChannels until the client closes it. `ssh -R`: holdfast listens on nothing for its users.
 */
import type { ServerChannel } from '../ssh/ssh2.js';
import type { SessionScope } from './scope.js';
import { resumeSubsystem } from './resume-subsystem.js';
import { RESUME_SUBSYSTEM } from '../resume/frames.js';

export function refuseSession(s: SessionScope, accept: () => unknown, why?: string): void {
  const session = accept() as (NodeJS.EventEmitter & Record<string, unknown>) | undefined;
  if (!session) return;
  session.once('close', s.registry.hold('refused-session'));
  const port = s.localPort;
  const message =
    why ??
    `holdfast: this is an SSH jump host; it runs no shell or command.\r\n` +
      `holdfast: use it with -J, e.g.  ssh -J ${s.user}@<this-host>:${port} user@target\r\n`;
  const answer = (acceptReq?: () => unknown) => acceptReq?.();
  session.on('pty', answer);
  session.on('env', answer);
  session.on('window-change', answer);
  let logged = false;
  const refuse = (acceptReq?: () => unknown) => {
    // accept() synchronously (ssh2 drops data before accept), then one line on stderr and exit 1.
    const ch = acceptReq?.() as ServerChannel | undefined;
    if (!logged) {
      logged = true;
      s.failure('session-channel-refused', { ...s.who(), ...(why ? { why: why.replace(/^holdfast: |\r\n$/g, '') } : {}) });
    }
    if (!ch) return;
    ch.stderr.write(message);
    ch.exit(1);
    ch.end();
  };
  session.on('shell', refuse);
  session.on('exec', refuse);
  session.on('subsystem', (acceptReq: () => unknown, _reject: () => void, info: { name: string }) => {
    // The transport of `holdfast connect` (a jump login, not a gateway one: that one has a why).
    if (info.name === RESUME_SUBSYSTEM && !why) return resumeSubsystem(s, acceptReq as () => ServerChannel | undefined);
    refuse(acceptReq);
  });
}

export interface ForwardRequest {
  readonly bindAddr?: string;
  readonly bindPort?: number;
  readonly socketPath?: string;
}

/**
 * A global request (tcpip-forward = ssh -R, streamlocal-forward@openssh.com): refused. ssh2 would
 * refuse these by itself; holdfast answers them so that each refusal is logged.
 */
export function refuseGlobalRequest(s: SessionScope, name: string, info: ForwardRequest | undefined, reject: (() => void) | undefined): void {
  if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') {
    const bind = info?.bindAddr !== undefined ? `${info.bindAddr}:${info.bindPort}` : info?.socketPath;
    s.failure('forward-refused', { ...s.who(), kind: name, ...(bind !== undefined ? { bind } : {}), why: 'holdfast does not listen for users (ssh -R is not offered)' });
  }
  reject?.();
}
