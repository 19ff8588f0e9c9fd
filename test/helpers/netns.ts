/**
 * Real kernel middleboxes: five network namespaces made by the test,
 *
 *   client ── r1 ── jump ── r2 ── target
 *
 * where r1 and r2 route with Linux conntrack set to forget established TCP flows after `forgetS`
 * seconds (nf_conntrack_tcp_timeout_established), with nf_conntrack_tcp_loose=0 (a mid-flow packet
 * of a forgotten flow is not picked up again) and invalid packets dropped, like a NAT or stateful
 * firewall. Addresses are in 198.18.0.0/15 (RFC 2544 benchmarking), inside these namespaces only.
 */
import { execFileSync } from 'node:child_process';

export interface Topology {
  readonly ns: { client: string; r1: string; jump: string; r2: string; target: string };
  readonly addr: { client: string; jumpFront: string; jumpBack: string; target: string };
  /** Drops everything to and from the target at r2 (no ICMP, no RST). */
  blackholeTarget(): void;
  restoreTarget(): void;
  /** Drops everything to and from the client at r1 (the network between the user and holdfast goes away). */
  blackholeClient(): void;
  restoreClient(): void;
  /** Forgets every flow r1 tracks (a NAT that rebooted): a packet of an old flow is then invalid and dropped. */
  flushClientRouter(): void;
  /** The client's address changes (Wi-Fi to LTE): `to` is added, the current one removed. */
  moveClient(to: string): void;
  destroy(): void;
}

export function netnsAvailable(): string | null {
  for (const tool of ['ip', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (Debian packages iproute2, nftables)`;
    }
  }
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `hfprobe${process.pid % 100000}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
  } catch (err) {
    return `cannot create a network namespace: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  return null;
}

/** Skips the calling suite (saying why) when network namespaces cannot be made here. */
export function requireNetns(ctx: Mocha.Context): void {
  const why = netnsAvailable();
  if (why) {
    console.log(`    SKIPPED: ${why}`);
    ctx.skip();
  }
}

function sh(args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
}

export function createTopology(forgetS: number): Topology {
  const id = `hf${process.pid % 100000}`;
  const ns = { client: `${id}c`, r1: `${id}r1`, jump: `${id}j`, r2: `${id}r2`, target: `${id}t` };
  const addr = { client: '198.18.1.2', jumpFront: '198.18.2.2', jumpBack: '198.18.3.2', target: '198.18.4.2' };
  const destroy = () => {
    for (const n of Object.values(ns)) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'pipe' });
      } catch {
        /* not there */
      }
    }
  };
  destroy();
  try {
    for (const n of Object.values(ns)) {
      sh(['ip', 'netns', 'add', n]);
      sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
    }
    const link = (a: string, aIf: string, b: string, bIf: string) => {
      sh(['ip', '-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b]);
      sh(['ip', '-n', a, 'link', 'set', aIf, 'up']);
      sh(['ip', '-n', b, 'link', 'set', bIf, 'up']);
    };
    link(ns.client, 'eth0', ns.r1, 'c0');
    link(ns.r1, 'j0', ns.jump, 'eth0');
    link(ns.jump, 'eth1', ns.r2, 'j0');
    link(ns.r2, 't0', ns.target, 'eth0');
    const ip = (n: string, cidr: string, dev: string) => sh(['ip', '-n', n, 'addr', 'add', cidr, 'dev', dev]);
    ip(ns.client, '198.18.1.2/24', 'eth0');
    ip(ns.r1, '198.18.1.1/24', 'c0');
    ip(ns.r1, '198.18.2.1/24', 'j0');
    ip(ns.jump, '198.18.2.2/24', 'eth0');
    ip(ns.jump, '198.18.3.2/24', 'eth1');
    ip(ns.r2, '198.18.3.1/24', 'j0');
    ip(ns.r2, '198.18.4.1/24', 't0');
    ip(ns.target, '198.18.4.2/24', 'eth0');
    sh(['ip', '-n', ns.client, 'route', 'add', 'default', 'via', '198.18.1.1']);
    sh(['ip', '-n', ns.jump, 'route', 'add', '198.18.1.0/24', 'via', '198.18.2.1']);
    sh(['ip', '-n', ns.jump, 'route', 'add', '198.18.4.0/24', 'via', '198.18.3.1']);
    sh(['ip', '-n', ns.target, 'route', 'add', 'default', 'via', '198.18.4.1']);
    for (const r of [ns.r1, ns.r2]) {
      sh(['ip', 'netns', 'exec', r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      execFileSync('ip', ['netns', 'exec', r, 'nft', '-f', '-'], {
        input: 'table inet middlebox {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    ct state invalid counter drop\n  }\n}\n',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      sh(['ip', 'netns', 'exec', r, 'sysctl', '-qw', `net.netfilter.nf_conntrack_tcp_timeout_established=${forgetS}`]);
      sh(['ip', 'netns', 'exec', r, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_tcp_loose=0']);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    ns,
    addr,
    blackholeTarget() {
      execFileSync('ip', ['netns', 'exec', ns.r2, 'nft', '-f', '-'], {
        input: `table inet blackhole {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n    ip daddr ${addr.target} drop\n    ip saddr ${addr.target} drop\n  }\n}\n`,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    restoreTarget() {
      execFileSync('ip', ['netns', 'exec', ns.r2, 'nft', 'delete', 'table', 'inet', 'blackhole'], { stdio: 'pipe' });
    },
    blackholeClient() {
      execFileSync('ip', ['netns', 'exec', ns.r1, 'nft', '-f', '-'], {
        input: `table inet blackhole {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n    ip saddr 198.18.1.0/24 drop\n    ip daddr 198.18.1.0/24 drop\n  }\n}\n`,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    restoreClient() {
      execFileSync('ip', ['netns', 'exec', ns.r1, 'nft', 'delete', 'table', 'inet', 'blackhole'], { stdio: 'pipe' });
    },
    flushClientRouter() {
      execFileSync('ip', ['netns', 'exec', ns.r1, 'conntrack', '-F'], { stdio: 'pipe' });
    },
    moveClient(to: string) {
      // Deleting the primary address would take the secondary with it otherwise.
      sh(['ip', 'netns', 'exec', ns.client, 'sysctl', '-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
      sh(['ip', '-n', ns.client, 'addr', 'add', `${to}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', ns.client, 'addr', 'del', `${addr.client}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', ns.client, 'route', 'replace', 'default', 'via', '198.18.1.1', 'src', to]);
      (addr as { client: string }).client = to;
    },
    destroy,
  };
}
