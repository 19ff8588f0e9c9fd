/**
 * Keepalive on the client leg: holdfast's own keepalive@openssh.com probes to the user's ssh, so no
 * client needs ServerAliveInterval (which `ssh -J` does not even pass to the jump leg). Started at
 * `ready`, never before. Every chunk the client socket delivers counts as "received"; replies also
 * give round-trip times. Owns: the monitor's timer and the socket 'data' listener; stop() releases
 * both.
 */
import type net from 'node:net';
import type { Connection } from '../ssh/ssh2.js';
import { createPinger } from '../ssh/ping.js';
import { KeepaliveMonitor, systemClock, type Clock, type MonitorStats } from '../keepalive/monitor.js';
import type { KeepalivePolicy } from '../keepalive/policy.js';

export class ClientKeepalive {
  private readonly monitor: KeepaliveMonitor;
  private readonly onData = () => this.monitor.received();

  constructor(
    conn: Connection,
    private readonly socket: net.Socket,
    policy: KeepalivePolicy,
    hooks: { dead(stats: MonitorStats): void; probe?(n: number): void },
    clock: Clock = systemClock,
  ) {
    const pinger = createPinger(conn, (rtt) => this.monitor.replied(rtt), () => clock.now());
    this.monitor = new KeepaliveMonitor(policy, clock, {
      probe: () => {
        pinger.ping();
        hooks.probe?.(this.monitor.stats().outstanding);
      },
      dead: (stats) => hooks.dead(stats),
    });
    socket.on('data', this.onData);
  }

  get policy(): KeepalivePolicy {
    return this.monitor.currentPolicy;
  }

  setPolicy(p: KeepalivePolicy): void {
    this.monitor.setPolicy(p);
  }

  stats(): MonitorStats {
    return this.monitor.stats();
  }

  stop(): void {
    this.monitor.stop();
    this.socket.off('data', this.onData);
  }
}
