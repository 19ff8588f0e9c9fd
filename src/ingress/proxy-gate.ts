/**
 * The door of a PROXY listener (`listen[].proxyProtocol`): a connection must come from a trusted
 * balancer and begin with a PROXY header, read within PROXY_HEADER_TIMEOUT_MS; then it is admitted
 * with the client's address from the header. Everything else is closed before any SSH byte.
 */
import type net from 'node:net';
import type { Listener } from '../config/resolve.js';
import { ProxyTrust, readProxyHeader, type ProxyRefusal } from './proxy-reader.js';

type ProxyProtocol = NonNullable<Listener['proxyProtocol']>;

/** The client's address; `via` is the load balancer's (ip:port) on a PROXY listener. */
export interface Peer {
  readonly ip: string;
  readonly port: number;
  readonly via?: string;
}

export interface ProxyGateHooks {
  /** The header named a client (or none, with `unknown` said first): start its session. */
  admit(sock: net.Socket, peer: Peer): void;
  refused(via: string, cause: ProxyRefusal, why: string): void;
  /** v1 UNKNOWN / v2 UNSPEC: the balancer's address stands in for the client's. */
  unknown(via: string, what: string): void;
  /** No client: a v2 LOCAL header, or a close before any byte (health checks); closed already. */
  noClient(via: string, what: string): void;
  readonly stopping: () => boolean;
}

export class ProxyGate {
  /** Connections whose header has not arrived yet (closed by closeAll at shutdown). */
  private readonly pending = new Set<net.Socket>();
  /** Keyed by the config's object: a reload brings a new one. */
  private readonly trusts = new WeakMap<ProxyProtocol, ProxyTrust>();

  constructor(private readonly hooks: ProxyGateHooks) {}

  /** `peer` is the socket's own peer (the balancer, if it is one); `headerRead` once the wait is over. */
  accept(sock: net.Socket, proxy: ProxyProtocol, peer: Peer, headerRead: () => void = () => {}): void {
    const via = `${peer.ip}:${peer.port}`;
    if (!this.trustOf(proxy).trusts(peer.ip)) {
      sock.destroy();
      this.hooks.refused(via, 'untrusted', `${peer.ip} is not in this listener's proxyProtocol.trusted`);
      return;
    }
    sock.setNoDelay(true);
    this.pending.add(sock);
    void readProxyHeader(sock).then((r) => {
      this.pending.delete(sock);
      headerRead();
      if (!r.ok || this.hooks.stopping() || sock.destroyed) sock.destroy();
      if (!r.ok && r.cause === 'closed' && r.bytes === 0) return this.hooks.noClient(via, 'closed before any byte');
      if (!r.ok) return this.hooks.refused(via, r.cause, r.why);
      const h = r.header;
      if (sock.destroyed) return;
      // LOCAL is a health check: nothing to serve, nothing to log above debug.
      if (h.command === 'local') {
        sock.destroy();
        return this.hooks.noClient(via, 'PROXY v2 LOCAL');
      }
      if (h.command === 'proxy') return this.hooks.admit(sock, { ...h.source, via });
      this.hooks.unknown(via, h.what);
      this.hooks.admit(sock, { ...peer, via });
    });
  }

  closeAll(): void {
    for (const sock of this.pending) sock.destroy();
  }

  private trustOf(p: ProxyProtocol): ProxyTrust {
    let trust = this.trusts.get(p);
    if (!trust) this.trusts.set(p, (trust = new ProxyTrust(p.trusted)));
    return trust;
  }
}
