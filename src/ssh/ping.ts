/**
 * keepalive@openssh.com on a server-side ssh2 connection.
 *
 * ssh2's server has no public per-connection ping: `_protocol.ping()` sends the global request with
 * want_reply, and the server's handler table has no REQUEST_SUCCESS / REQUEST_FAILURE entries, so the
 * replies are dropped unless we add them. OpenSSH answers REQUEST_FAILURE, which proves the peer alive
 * just as well. Replies come back in request order (RFC 4254 §4), so a FIFO of reply callbacks pairs
 * each reply with its probe (the keepalive times it: src/keepalive/ssh-leg.ts). holdfast's server
 * sends no other global requests, so every reply is a ping's.
 * Never ping before `ready`: OpenSSH aborts with "bad message during authentication: type 80".
 */
import type { Duplex } from 'node:stream';
import type { Client, Connection } from './ssh2.js';
import type { SendProbe } from '../keepalive/ssh-leg.js';

interface ProtocolWithHandlers {
  ping(): void;
  _handlers: Record<string, ((...args: unknown[]) => void) | undefined>;
}

/** Probes on a server-side connection (the client leg): replies are matched to probes in FIFO order. */
export function serverProbe(conn: Connection): SendProbe {
  const proto = (conn as unknown as { _protocol: ProtocolWithHandlers })._protocol;
  const waiting: Array<() => void> = [];
  const reply = () => waiting.shift()?.();
  proto._handlers.REQUEST_SUCCESS = reply;
  proto._handlers.REQUEST_FAILURE = reply;
  return (onReply) => {
    // Bound the FIFO: a frozen peer answers nothing, and the keepalive ends the leg long before this.
    if (waiting.length >= 1000) waiting.shift();
    waiting.push(onReply);
    proto.ping();
  };
}

/**
 * Probes on an ssh2 Client (holdfast's own bastion and gateway connections). ssh2's Client keeps a
 * FIFO of global-request callbacks (`_callbacks`) that its REQUEST_SUCCESS / REQUEST_FAILURE handlers
 * shift; pushing ours first keeps the order right. ssh2's own client keepalive is not used: it resets
 * only on replies, never on data (ssh2 issue #474).
 */
export function clientProbe(client: InstanceType<typeof Client>): SendProbe {
  const c = client as unknown as { _callbacks?: Array<(...a: unknown[]) => void>; _protocol?: { ping(): void } };
  return (onReply) => {
    if (!c._callbacks || !c._protocol) return;
    c._callbacks.push(() => onReply());
    c._protocol.ping();
  };
}

/** The stream under an ssh2 Client (a TCP socket, or the previous hop's channel): private `_sock`. */
export function transport(client: InstanceType<typeof Client>): Duplex {
  return (client as unknown as { _sock: Duplex })._sock;
}
