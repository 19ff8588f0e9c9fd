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
import { KeepaliveMonitor, systemClock, timeoutFields } from '../keepalive/monitor.js';
import { describePolicy, strictest, type KeepalivePolicy } from '../keepalive/policy.js';
import { pingClient, transport } from '../ssh/ping.js';
import { bastionTarget, dialSsh, UpstreamDialError, type DialOptions } from './ssh-dial.js';

export { UpstreamDialError };

export type UpstreamCloseReason = 'upstream-keepalive-timeout' | 'upstream-closed' | 'upstream-error' | 'upstream-idle' | 'upstream-evicted' | 'shutdown';

export interface PoolOptions extends DialOptions {
  readonly max: number;
  readonly idleTimeoutMs: number;
}

type Listener = (reason: UpstreamCloseReason, detail?: string) => void;

export class PooledUpstream {
  private readonly channels = new Map<object, { policy: KeepalivePolicy; onClose: Listener }>();
  private idleTimer: NodeJS.Timeout | undefined;
  private monitor: KeepaliveMonitor | undefined;
  private closed = false;
  private readonly onData = () => this.monitor?.received();
  readonly openedAt = Date.now();

  constructor(
    readonly key: string,
    /** Outermost first; the last one carries the channels. */
    private readonly hops: readonly InstanceType<typeof Client>[],
    private readonly opts: PoolOptions,
    private readonly onGone: (p: PooledUpstream) => void,
  ) {
    const inner = this.client;
    for (const hop of hops) {
      hop.on('close', () => this.close('upstream-closed'));
      hop.on('error', (err: Error) => this.close('upstream-error', err.message));
    }
    transport(inner).on('data', this.onData);
    this.armIdle();
  }

  private get client(): InstanceType<typeof Client> {
    return this.hops[this.hops.length - 1]!;
  }

  get channelCount(): number {
    return this.channels.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Opens a direct-tcpip channel to host:port on the last bastion (which resolves the name). */
  open(host: string, port: number, srcIP: string, srcPort: number, policy: KeepalivePolicy, onClose: Listener): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new UpstreamDialError(this.key, 'the bastion connection closed'));
      try {
        this.client.forwardOut(srcIP, srcPort, host, port, (err, stream) => {
          if (err) return reject(new UpstreamDialError(this.key, `bastion ${this.key} could not open ${host}:${port}: ${err.message}`));
          if (this.closed) {
            stream.destroy();
            return reject(new UpstreamDialError(this.key, 'the bastion connection closed'));
          }
          this.channels.set(stream, { policy, onClose });
          this.replan();
          stream.once('close', () => this.release(stream));
          resolve(stream);
        });
      } catch (err) {
        reject(new UpstreamDialError(this.key, String(err)));
      }
    });
  }

  /**
   * The channel is done (its relay closed). Called by the relay's owner, because a destroyed ssh2
   * channel whose readable side nobody drains never emits 'close'. Idempotent.
   */
  release(stream: object): void {
    if (this.channels.delete(stream)) this.replan();
  }

  /** Keepalive: the strictest policy of the channels on it; none while idle (the idle timer runs). */
  private replan(): void {
    if (this.closed) return;
    const policy = strictest([...this.channels.values()].map((c) => c.policy));
    if (!policy) {
      this.monitor?.stop();
      this.monitor = undefined;
      this.armIdle();
      return;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.monitor) {
      this.monitor.setPolicy(policy);
      return;
    }
    this.monitor = new KeepaliveMonitor(policy, systemClock, {
      probe: () => pingClient(this.client, (rtt) => this.monitor?.replied(rtt)),
      dead: (stats) => {
        this.opts.log.warn('upstream-keepalive-timeout', {
          upstream: this.key,
          reason: 'upstream-keepalive-timeout',
          leg: 'upstream',
          layer: 'ssh',
          policy: describePolicy(this.monitor?.currentPolicy ?? policy),
          channels: this.channels.size,
          ...timeoutFields(this.monitor?.currentPolicy ?? policy, stats),
        });
        this.close('upstream-keepalive-timeout');
      },
    });
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.channels.size === 0) this.close('upstream-idle');
    }, this.opts.idleTimeoutMs);
  }

  /** Idempotent; every channel on it hears the reason, then the hops are torn down innermost first. */
  close(reason: UpstreamCloseReason, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.monitor?.stop();
    this.monitor = undefined;
    transport(this.client).off('data', this.onData);
    const channels = [...this.channels.values()];
    this.channels.clear();
    for (const c of channels) c.onClose(reason, detail);
    for (const hop of [...this.hops].reverse()) {
      hop.end();
      transport(hop).destroy();
    }
    this.opts.log.info('upstream-close', { upstream: this.key, reason, ...(detail ? { detail } : {}), channels: channels.length, durationMs: Date.now() - this.openedAt });
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
    this.opts.log.info('upstream-open', { upstream: key, hops: chain.map((u) => `${u.user}@${u.host}:${u.port}`) });
    return pooled;
  }

  closeAll(reason: UpstreamCloseReason): void {
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
