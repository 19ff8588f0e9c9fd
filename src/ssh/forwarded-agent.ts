/**
 * The user's forwarded agent (`ssh -A`), reached from holdfast's side of the client leg.
 *
 * OpenSSH's client answers an `auth-agent@openssh.com` channel open from the server with a
 * connection to its local agent (clientloop.c client_request_agent; only when ForwardAgent is on).
 * ssh2's server has no public way to open that channel: like its own forwardOut(), we register a
 * callback in the connection's channel manager and send CHANNEL_OPEN with
 * `_protocol.openssh_authAgent()`; the CHANNEL_OPEN_CONFIRMATION handler then hands us a Channel.
 * Private fields of the pinned ssh2; test/unit/ssh2-internals.test.ts fails if they move.
 *
 * `ForwardedAgent` plugs that stream into ssh2's OpenSSHAgent (which speaks the agent protocol over
 * whatever getStream gives it), so the same object signs gateway logins (`agent: true`) and serves
 * the target's agent requests when the user's session asked for forwarding.
 */
import type { Duplex } from 'node:stream';
import { OpenSSHAgent, type Connection } from './ssh2.js';
import { BASE_WINDOW } from './channel-window.js';

const PACKET_SIZE = 32 * 1024;

interface ServerInternals {
  _chanMgr: { add(v: unknown): number };
  _protocol: { openssh_authAgent(id: number, window: number, packetSize: number): void };
}

/** Opens an auth-agent@openssh.com channel to the user's ssh client. */
export function openAgentChannel(conn: Connection, cb: (err: Error | undefined, stream?: Duplex) => void): void {
  const c = conn as unknown as ServerInternals;
  const wrapper = (err: Error | undefined, stream?: Duplex) => cb(err, stream);
  (wrapper as unknown as { type: string }).type = 'auth-agent@openssh.com';
  let id: number;
  try {
    id = c._chanMgr.add(wrapper);
    if (id === -1) return cb(new Error('no free channels'));
    c._protocol.openssh_authAgent(id, BASE_WINDOW, PACKET_SIZE);
  } catch (err) {
    cb(err instanceof Error ? err : new Error(String(err)));
  }
}

export class ForwardedAgent extends OpenSSHAgent {
  /** Channels opened to the user's agent and not yet closed (for teardown). */
  private readonly open = new Set<Duplex>();

  constructor(private readonly conn: Connection) {
    super('');
  }

  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    openAgentChannel(this.conn, (err, stream) => {
      if (err || !stream) return cb(err ?? new Error('the client refused to open its agent (connect with ssh -A)'));
      this.open.add(stream);
      stream.once('close', () => this.open.delete(stream));
      cb(undefined, stream);
    });
  }

  destroy(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
