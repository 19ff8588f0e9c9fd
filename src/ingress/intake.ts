/**
 * From an accepted socket to a session: the refusals before any byte (maxSessions, the fd budget),
 * the PROXY header on a PROXY listener, and the startup gate (maxStartups, perSourceMaxStartups,
 * host-wide through the primary). What survives them is handed to `start`.
 */
import type net from 'node:net';
import type { Listener, ResolvedConfig } from '../config/resolve.js';
import type { Events } from '../events.js';
import type { EventThrottle } from '../event-throttle.js';
import type { FdBudget, FdPlan } from '../fd-budget.js';
import { unmapIPv4 } from '../routing/canonical.js';
import type { Admission, StartupAdmitter } from '../startups.js';
import { ProxyGate, type Peer } from './proxy-gate.js';

export interface IntakeHooks {
  readonly config: () => ResolvedConfig;
  /** Listener `index` as the config in force has it (a reload changes proxyProtocol). */
  readonly listener: (index: number) => Listener;
  readonly fds: () => FdPlan;
  readonly budget: FdBudget;
  readonly startups: StartupAdmitter;
  readonly throttle: EventThrottle;
  readonly events: Events;
  readonly stopping: () => boolean;
  /** Sessions this worker serves (for the refusal lines). */
  readonly sessions: () => number;
  /** Admitted: start the session; `release` gives its startup slot back. */
  readonly start: (sock: net.Socket, peer: Peer, release: () => void) => void;
}

export class Intake {
  /** Client connections this worker holds, from accept to close. */
  private clientSockets = 0;
  private readonly proxyGate: ProxyGate;

  constructor(private readonly h: IntakeHooks) {
    this.proxyGate = new ProxyGate({
      admit: (sock, peer) => this.admit(sock, peer),
      refused: (src, cause, why) => h.throttle.emit('proxy-refused', { src, cause, why }),
      unknown: (src, what) => h.throttle.emit('proxy-address-unknown', { src, why: `${what}: the balancer did not give the client's address, so its own is used`, fix: 'send TCP client addresses (haproxy: send-proxy-v2)' }),
      noClient: (src, what) => h.events.emit('proxy-no-client', { src, what }),
      stopping: h.stopping,
    });
  }

  /** A socket accepted on listener `index` (src/ingress/listen.ts gave it its 'error' listener). */
  accept(sock: net.Socket, index: number): void {
    const h = this.h;
    sock.once('close', h.budget.hold());
    this.clientSockets++;
    sock.once('close', () => this.clientSockets--);
    if (h.stopping()) {
      sock.destroy();
      return;
    }
    const peer: Peer = { ip: unmapIPv4(sock.remoteAddress ?? ''), port: sock.remotePort ?? 0 };
    // Refused before any byte, like sshd at MaxStartups: a worker out of descriptors serves nobody.
    // Counted from accept (a PROXY header or the primary's startup answer can still be pending).
    const held = this.clientSockets - 1;
    const fds = h.fds();
    if (held >= fds.maxSessions || h.budget.inUse > h.budget.sockets) {
      sock.destroy();
      const why =
        held >= fds.maxSessions
          ? `this worker serves maxSessions (${fds.maxSessions}) connections already`
          : `no file descriptor to spare (${h.budget.inUse} sockets of ${h.budget.sockets} planned for RLIMIT_NOFILE ${fds.limit})`;
      const fix = h.config().maxSessions === 'auto' ? 'raise LimitNOFILE in the systemd unit (maxSessions: auto follows it), or add workers' : 'raise maxSessions (and LimitNOFILE with it), or add workers';
      h.throttle.emit('session-refused', { src: `${peer.ip}:${peer.port}`, why, sessions: h.sessions(), fix });
      return;
    }
    const listener = h.listener(index);
    // No peer address: reset before it reached this worker (a balancer's health check does that).
    if (listener.proxyProtocol && !peer.ip) sock.destroy();
    else if (listener.proxyProtocol) this.awaitHeader(sock, listener.proxyProtocol, peer);
    else this.admit(sock, peer);
  }

  /** Connections still waiting for their PROXY header are closed (at shutdown and drain). */
  closeAll(): void {
    this.proxyGate.closeAll();
  }

  /**
   * A connection waiting for its PROXY header is a startup too (maxStartups, host-wide), or a trusted
   * balancer's address could hold every descriptor with header-less connections. Not per source:
   * every client behind the balancer shares its address. The slot is given back when the header
   * is read; the client's own startup is admitted then, by its own address.
   */
  private awaitHeader(sock: net.Socket, proxy: NonNullable<Listener['proxyProtocol']>, peer: Peer): void {
    const gate = (a: Admission) => {
      if (!a.ok) {
        sock.destroy();
        return this.h.throttle.emit('startup-refused', { src: `${peer.ip}:${peer.port}`, why: `${a.why} (connections waiting for their PROXY header count)`, pending: a.pending });
      }
      // Closed while the primary answered: nothing to wait for.
      if (sock.destroyed || this.h.stopping()) {
        a.release();
        return void sock.destroy();
      }
      sock.once('close', a.release);
      this.proxyGate.accept(sock, proxy, peer, a.release);
    };
    const admission = this.h.startups.admit(peer.ip, { ...this.h.config().startups, perSource: 0 });
    if (admission instanceof Promise) void admission.then(gate);
    else gate(admission);
  }

  /** Admits a connection by its client address (the startup gate) and starts its session. */
  private admit(sock: net.Socket, peer: Peer): void {
    const admission = this.h.startups.admit(peer.ip, this.h.config().startups);
    if (!(admission instanceof Promise)) return this.admitted(sock, peer, admission);
    void admission.then((a) => this.admitted(sock, peer, a));
  }

  private admitted(sock: net.Socket, peer: Peer, admission: Admission): void {
    if (!admission.ok) {
      // Refused before any byte is read: sshd does the same (it closes the socket).
      sock.destroy();
      this.h.throttle.emit('startup-refused', { src: `${peer.ip}:${peer.port}`, why: admission.why, pending: admission.pending });
      return;
    }
    if (this.h.stopping() || sock.destroyed) {
      admission.release();
      sock.destroy();
      return;
    }
    this.h.start(sock, peer, admission.release);
  }
}
