/**
 * SSH upstream legs for routes with `via`: holdfast's own SSH connection to a bastion (or a chain of
 * them, each hop dialled through the one before), shared by every channel through it like
 * ControlMaster, with keepalive@openssh.com on it: real payload, so it crosses middleboxes that
 * terminate TCP too.
 *
 * The pool is an lru-cache bounded by `upstreamPool.max`; a connection with no channel closes after
 * `upstreamPool.idleTimeout`. When a pooled connection dies, every channel on it ends with that
 * reason and the next request dials afresh. Owns: the clients, the idle timers, the monitors.
 */
import type { Duplex } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { Client, type ClientChannel } from '../ssh/ssh2.js';
import type { ResolvedUpstream } from '../config/resolve.js';
import type { BastionCloseReason } from '../close-reasons.js';
import { describePolicy, samePolicy, type KeepalivePolicy } from '../keepalive/policy.js';
import { PolicySet } from '../keepalive/policy-set.js';
import { SshLegKeepalive } from '../keepalive/ssh-leg.js';
import { timeoutReport } from '../keepalive/report.js';
import { clientProbe, transport } from '../ssh/ping.js';
import { bastionTarget, dialSsh, negotiatedKex, UpstreamDialError, type DialOptions } from './ssh-dial.js';
import { NO_ROUTE } from '../metrics/declarations.js';

export { UpstreamDialError };

export interface PoolOptions extends DialOptions {
  readonly max: number;
  readonly idleTimeoutMs: number;
}

type Lost = (reason: BastionCloseReason, detail?: string) => void;

/** One channel on a pooled connection, as its relay holds it. */
export interface PooledChannel {
  readonly stream: ClientChannel;
  /** The connection died: `fn` hears why (at once, if it already has). */
  onLost(fn: Lost): void;
  /** The relay is done with the channel. Idempotent. */
  release(): void;
  /** A reload: the channel's route (and so its upstream policy) changed. True when the connection's keepalive changed. */
  setPolicy(policy: KeepalivePolicy, route: string): boolean;
}

class Handle implements PooledChannel {
  private listener: Lost | undefined;
  private lost: [BastionCloseReason, string | undefined] | undefined;

  constructor(
    readonly stream: ClientChannel,
    private readonly owner: PooledUpstream,
  ) {}

  onLost(fn: Lost): void {
    if (this.lost) fn(...this.lost);
    else this.listener = fn;
  }

  lose(reason: BastionCloseReason, detail: string | undefined): void {
    if (this.listener) this.listener(reason, detail);
    else this.lost = [reason, detail];
  }

  release(): void {
    this.owner.release(this);
  }

  setPolicy(policy: KeepalivePolicy, route: string): boolean {
    return this.owner.setPolicy(this, policy, route);
  }
}

export class PooledUpstream {
  /** The channels on it; their routes' upstream policies decide its keepalive (the strictest). */
  private readonly channels = new PolicySet<Handle>(undefined, () => this.replan());
  private readonly handles = new Set<Handle>();
  private idleTimer: NodeJS.Timeout | undefined;
  private keepalive: SshLegKeepalive | undefined;
  private closed = false;
  readonly openedAt = Date.now();

  constructor(
    readonly key: string,
    /** Outermost first; the last one carries the channels. */
    private readonly hops: readonly InstanceType<typeof Client>[],
    private readonly opts: PoolOptions,
    private readonly onGone: (p: PooledUpstream) => void,
  ) {
    for (const hop of hops) {
      hop.on('close', () => this.close('upstream-closed'));
      hop.on('error', (err: Error) => this.close('upstream-error', err.message));
    }
    this.armIdle();
  }

  private get client(): InstanceType<typeof Client> {
    return this.hops[this.hops.length - 1]!;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Opens a direct-tcpip channel to host:port on the last bastion (which resolves the name). */
  open(host: string, port: number, srcIP: string, srcPort: number, policy: KeepalivePolicy, route: string): Promise<PooledChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new UpstreamDialError(this.key, 'the bastion connection closed'));
      try {
        this.client.forwardOut(srcIP, srcPort, host, port, (err, stream) => {
          if (err) return reject(new UpstreamDialError(this.key, `bastion ${this.key} could not open ${host}:${port}: ${err.message}`));
          if (this.closed) {
            stream.destroy();
            return reject(new UpstreamDialError(this.key, 'the bastion connection closed'));
          }
          const h = new Handle(stream, this);
          this.handles.add(h);
          this.channels.add(h, policy, route);
          // A destroyed ssh2 channel whose readable side nobody drains never emits 'close': the
          // relay releases it too.
          stream.once('close', () => h.release());
          resolve(h);
        });
      } catch (err) {
        reject(new UpstreamDialError(this.key, String(err)));
      }
    });
  }

  /** True when the connection's keepalive policy changed. */
  setPolicy(h: Handle, policy: KeepalivePolicy, route: string): boolean {
    if (!this.handles.has(h)) return false;
    const before = this.channels.current();
    this.channels.add(h, policy, route);
    const now = this.channels.current();
    return !before || !now || !samePolicy(before, now);
  }

  /** Idempotent. */
  release(h: Handle): void {
    if (!this.handles.delete(h)) return;
    this.channels.remove(h);
    if (this.handles.size === 0) this.armIdle();
  }

  /** Keepalive under the strictest policy of the channels on it; none while idle (the idle timer runs). */
  private replan(): void {
    if (this.closed) return;
    const policy = this.channels.current();
    if (!policy) {
      this.keepalive?.stop();
      this.keepalive = undefined;
      return;
    }
    this.stopIdle();
    if (this.keepalive) return this.keepalive.setPolicy(policy);
    const route = () => this.channels.currentLabel() ?? NO_ROUTE;
    const events = this.opts.events;
    this.keepalive = new SshLegKeepalive(policy, transport(this.client), clientProbe(this.client), {
      probed: (n) => events.emit('keepalive-probe', () => ({ leg: 'upstream' as const, route: route(), upstream: this.key, outstanding: n })),
      replied: (rttMs) => events.emit('keepalive-reply', () => ({ leg: 'upstream' as const, route: route(), upstream: this.key, rttMs })),
      dead: (stats, p) => {
        this.opts.events.emit('upstream-keepalive-timeout', {
          upstream: this.key,
          route: route(),
          policy: describePolicy(p),
          channels: this.handles.size,
          ...timeoutReport('upstream', 'ssh', p, stats),
        });
        this.close('upstream-keepalive-timeout');
      },
    });
  }

  private stopIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdle(): void {
    this.stopIdle();
    this.idleTimer = setTimeout(() => {
      if (this.handles.size === 0) this.close('upstream-idle');
    }, this.opts.idleTimeoutMs);
  }

  /** Idempotent; every channel on it hears the reason, then the hops are torn down innermost first. */
  close(reason: BastionCloseReason, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopIdle();
    this.keepalive?.stop();
    this.keepalive = undefined;
    const handles = [...this.handles];
    this.handles.clear();
    for (const h of handles) h.lose(reason, detail);
    for (const hop of [...this.hops].reverse()) {
      hop.end();
      transport(hop).destroy();
    }
    this.opts.events.emit('upstream-close', { upstream: this.key, reason, ...(detail ? { detail } : {}), channels: handles.length, durationMs: Date.now() - this.openedAt });
    this.onGone(this);
  }
}

export class UpstreamPool {
  private readonly cache: LRUCache<string, PooledUpstream>;
  private readonly dialing = new Map<string, Promise<PooledUpstream>>();

  constructor(private readonly opts: PoolOptions) {
    this.cache = new LRUCache<string, PooledUpstream>({
      max: opts.max,
      dispose: (p, _k, why) => {
        if (why === 'evict') p.close('upstream-evicted');
      },
    });
  }

  get size(): number {
    return this.cache.size;
  }

  /** The pooled connection for this chain, dialling it (once, however many ask at the same time). */
  acquire(chain: readonly ResolvedUpstream[]): Promise<PooledUpstream> {
    const key = chain.map((u) => u.name).join('>');
    const live = this.cache.get(key);
    if (live && !live.isClosed) return Promise.resolve(live);
    const pending = this.dialing.get(key);
    if (pending) return pending;
    const p = this.dial(key, chain).finally(() => this.dialing.delete(key));
    this.dialing.set(key, p);
    return p;
  }

  private async dial(key: string, chain: readonly ResolvedUpstream[]): Promise<PooledUpstream> {
    const hops: InstanceType<typeof Client>[] = [];
    try {
      let via: Duplex | undefined;
      for (const u of chain) {
        const client = await dialSsh(bastionTarget(u), via, this.opts);
        hops.push(client);
        const next = chain[hops.length];
        if (next) via = await forward(client, next.host, next.port, u.name);
      }
    } catch (err) {
      for (const h of hops.reverse()) h.end();
      throw err;
    }
    const pooled = new PooledUpstream(key, hops, this.opts, (p) => {
      if (this.cache.peek(key) === p) this.cache.delete(key);
    });
    this.cache.set(key, pooled);
    this.opts.events.emit('upstream-open', { upstream: key, hops: chain.map((u) => `${u.user}@${u.host}:${u.port}`), kex: hops.map(negotiatedKex) });
    return pooled;
  }

  closeAll(reason: BastionCloseReason): void {
    for (const p of [...this.cache.values()]) p.close(reason);
    this.cache.clear();
  }
}

function forward(client: InstanceType<typeof Client>, host: string, port: number, name: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
      if (err) reject(new UpstreamDialError(name, `bastion ${name} could not reach the next hop ${host}:${port}: ${err.message}`));
      else resolve(stream);
    });
  });
}
