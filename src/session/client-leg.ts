/**
 * The client leg's keepalive: the policy set it serves (every open channel's route, the gateway
 * route; the top-level default while there are none) and the SSH-leg keepalive running the strictest
 * of them (src/keepalive/). Owns the keepalive's timer through SshLegKeepalive; stop() releases it.
 */
import { describePolicy, samePolicy, type KeepalivePolicy } from '../keepalive/policy.js';
import { PolicySet } from '../keepalive/policy-set.js';
import { SshLegKeepalive, type DataSource, type SendProbe, type SshLegHooks } from '../keepalive/ssh-leg.js';
import type { MonitorStats } from '../keepalive/monitor.js';

export class ClientLeg {
  private leg: SshLegKeepalive | undefined;
  /** Channel records (and the gateway session) with their routes' client policies. */
  readonly policies: PolicySet<object>;

  constructor(fallback: () => KeepalivePolicy) {
    this.policies = new PolicySet<object>(fallback, (p) => p && this.leg?.setPolicy(p));
  }

  /** At `ready`: probes start under the policy in force. */
  start(source: DataSource, probe: SendProbe, hooks: SshLegHooks): void {
    this.leg = new SshLegKeepalive(this.policies.current()!, source, probe, hooks);
  }

  get started(): boolean {
    return this.leg !== undefined;
  }

  get policy(): KeepalivePolicy | undefined {
    return this.leg?.policy;
  }

  /** The policy in words (channel-open lines); undefined before `ready`. */
  describe(): string | undefined {
    return this.leg ? describePolicy(this.leg.policy) : undefined;
  }

  /** Runs the policy the set gives now (a reload may have changed the default); the policy when it changed. */
  refresh(): KeepalivePolicy | null {
    const now = this.policies.current();
    if (!this.leg || !now || samePolicy(this.leg.policy, now)) return null;
    this.leg.setPolicy(now);
    return now;
  }

  stats(): MonitorStats | undefined {
    return this.leg?.stats();
  }

  stop(): void {
    this.leg?.stop();
  }
}
