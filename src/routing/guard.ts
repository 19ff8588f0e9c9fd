/**
 * Addresses a wildcard never reaches: the jump host itself. A route entry such as `*:22` means "the
 * network behind holdfast", not holdfast's own loopback, the cloud metadata service on link-local
 * (169.254.169.254) or holdfast's own listening addresses. Such an address is reached only through an
 * entry that names it: the address itself or a CIDR inside its block (src/routing/destination.ts).
 */
import net from 'node:net';
import os from 'node:os';
import dns from 'node:dns/promises';
import { canonicalAddress } from './canonical.js';

export interface Protection {
  /** What the address is, for the refusal message: "loopback", "link-local", ... */
  readonly what: string;
  /** The block the address belongs to; an entry must name a CIDR inside it (or the address). */
  readonly network: string;
  readonly prefix: number;
  readonly blockList: net.BlockList;
}

function block(what: string, cidr: string): Protection {
  const [network, bits] = cidr.split('/') as [string, string];
  const blockList = new net.BlockList();
  const family = net.isIPv6(network) ? 'ipv6' : 'ipv4';
  blockList.addSubnet(network, Number(bits), family);
  return { what, network, prefix: Number(bits), blockList };
}

const BLOCKS: readonly Protection[] = [
  block('a loopback address', '127.0.0.0/8'),
  block('a loopback address', '::1/128'),
  block('a link-local address (cloud metadata lives here)', '169.254.0.0/16'),
  block('a link-local address', 'fe80::/10'),
  block('an unspecified ("this host") address', '0.0.0.0/8'),
  block('an unspecified ("this host") address', '::/128'),
];

export interface Listen {
  readonly address: string;
}

/**
 * Holdfast's own addresses: each listening address, or every local interface address when one
 * listens on the unspecified address (0.0.0.0 or ::).
 */
export function ownAddresses(listen: readonly Listen[], interfaces = os.networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const l of listen) {
    if (l.address === '0.0.0.0' || l.address === '::') {
      for (const list of Object.values(interfaces)) for (const i of list ?? []) out.add(canonicalAddress(i.address.split('%')[0]!));
    } else if (net.isIP(l.address)) {
      out.add(canonicalAddress(l.address));
    }
  }
  return [...out];
}

/** The admin listener as the guard sees it: the addresses that reach it, and its port. */
export interface AdminEndpoint {
  /** Canonical addresses that reach the listener; with `any`, every own and loopback address does. */
  readonly addresses: readonly string[];
  readonly any: boolean;
  readonly port: number;
}

export function adminEndpoint(admin: { readonly address: string; readonly port: number } | undefined, resolved: readonly string[] = []): AdminEndpoint | undefined {
  if (!admin) return undefined;
  const any = admin.address === '0.0.0.0' || admin.address === '::';
  const addresses = any ? [] : net.isIP(admin.address) ? [canonicalAddress(admin.address)] : resolved.map((a) => canonicalAddress(a));
  return { addresses, any, port: admin.port };
}

/**
 * A name as admin.address (`localhost`): the listener binds the first address the name resolves to,
 * so every address it resolves to is protected (the one bound is among them). Resolved once, before
 * holdfast serves; a name that does not resolve leaves nothing to protect (the listener cannot bind).
 */
export async function resolveAdminEndpoint(
  admin: { readonly address: string; readonly port: number } | undefined,
  lookupAll: (name: string) => Promise<readonly string[]> = async (name) => (await dns.lookup(name, { all: true })).map((a) => a.address),
): Promise<AdminEndpoint | undefined> {
  if (!admin || net.isIP(admin.address) || admin.address === '0.0.0.0' || admin.address === '::') return adminEndpoint(admin);
  const resolved = await lookupAll(admin.address).catch(() => [] as readonly string[]);
  return adminEndpoint(admin, resolved);
}

/**
 * How old the list of holdfast's own addresses may get: interfaces change while holdfast runs (DHCP,
 * a floating IP moved to this host, a container bridge created later), and an address added after
 * start must not be reachable through a wildcard for longer than this.
 */
export const OWN_ADDRESSES_MAX_AGE_MS = 2000;

export class AddressGuard {
  private own: ReadonlyMap<string, Protection> = new Map();
  private ownKey: string | undefined;
  private readAt = -Infinity;
  private readonly readOwn: () => readonly string[];

  constructor(
    /** The addresses, or how to read them (read again at a decision when older than OWN_ADDRESSES_MAX_AGE_MS). */
    own: readonly string[] | (() => readonly string[]),
    /** holdfast's admin listener: never a destination, whatever a route says (resolved at start: setAdmin). */
    private admin?: AdminEndpoint,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.readOwn = typeof own === 'function' ? own : () => own;
    this.ownAddresses();
  }

  /** The current own addresses, keyed for lookup; re-read when the last read is too old. */
  private ownAddresses(): ReadonlyMap<string, Protection> {
    const t = this.now();
    if (t - this.readAt < OWN_ADDRESSES_MAX_AGE_MS) return this.own;
    this.readAt = t;
    let list: readonly string[];
    try {
      list = this.readOwn();
    } catch {
      return this.own; // the interfaces could not be read: keep the last list
    }
    const key = list.join(' ');
    if (key !== this.ownKey) {
      this.ownKey = key;
      this.own = new Map(list.map((a) => [a, block("one of holdfast's own addresses", `${a}/${net.isIPv6(a) ? 128 : 32}`)]));
    }
    return this.own;
  }

  /** The admin listener with its name resolved (resolveAdminEndpoint), before holdfast serves. */
  setAdmin(admin: AdminEndpoint | undefined): void {
    this.admin = admin;
  }

  /** True when address:port is holdfast's admin listener (refused even when a route names it). */
  isAdmin(address: string, port: number): boolean {
    const a = this.admin;
    if (!a || port !== a.port || net.isIP(address) === 0) return false;
    if (a.addresses.includes(address)) return true;
    if (!a.any || this.ownAddresses().has(address)) return a.any;
    // Listening on 0.0.0.0 / ::, it answers on loopback and "this host" addresses as well.
    const p = this.protection(address);
    return p !== null && !p.what.startsWith('a link-local');
  }

  /** Why `address` (canonical) needs an explicit entry, or null when a wildcard may reach it. */
  protection(address: string): Protection | null {
    if (address === '') return null;
    const family = net.isIP(address);
    if (family === 0) return null;
    for (const b of BLOCKS) if (b.blockList.check(address, family === 6 ? 'ipv6' : 'ipv4')) return b;
    return this.ownAddresses().get(address) ?? null;
  }
}

/** A guard with no own addresses: loopback, link-local and unspecified only (explain, unit tests). */
export const BASE_GUARD = new AddressGuard([]);
