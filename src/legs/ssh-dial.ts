/**
 * Dialling one SSH connection from holdfast: to a `via` bastion, or to the target itself in gateway
 * mode. Host keys are checked against known_hosts like OpenSSH's StrictHostKeyChecking (strict or
 * accept-new; a changed or revoked key is always refused and logged loudly). holdfast's own
 * keepalive monitor runs on the connection afterwards, so ssh2's client keepalive stays off.
 */
import fs from 'node:fs';
import type { Duplex, Readable } from 'node:stream';
import { Client, type BaseAgent } from '../ssh/ssh2.js';
import type { ResolvedUpstream } from '../config/resolve.js';
import type { Events } from '../events.js';
import { appendKnownHost, checkHostKey, fingerprintOf, knownTypes, readKnownHosts, keyType } from '../ssh/known-hosts.js';
import { serverAlgorithms } from '../ssh/server-adapter.js';
import { transport } from '../ssh/ping.js';
import { fdBudget } from '../fd-budget.js';

export class UpstreamDialError extends Error {
  override name = 'UpstreamDialError';
  constructor(
    readonly upstream: string,
    message: string,
  ) {
    super(message);
  }
}

export interface DialOptions {
  readonly connectTimeoutMs: number;
  readonly ownKnownHosts: string;
  readonly events: Events;
}

/** Where to log in and how to check the peer. Exactly one of `identity` and `agent` signs. */
export interface SshTarget {
  /** For logs and messages: the upstream's name, or the target host in gateway mode. */
  readonly name: string;
  /** "bastion" or "target": how the peer is called in messages. */
  readonly role: 'bastion' | 'target';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly identity?: string | undefined;
  /**
   * The user's forwarded agent (gateway mode): signs the login when there is no `identity`, and
   * serves the target's auth-agent@openssh.com channels for sessions that asked for forwarding.
   */
  readonly agent?: BaseAgent | undefined;
  readonly knownHosts?: string | undefined;
  readonly hostKeyPolicy: 'strict' | 'accept-new';
}

export function bastionTarget(u: ResolvedUpstream): SshTarget {
  return { name: u.name, role: 'bastion', host: u.host, port: u.port, user: u.user, identity: u.identity, knownHosts: u.knownHosts, hostKeyPolicy: u.hostKeyPolicy };
}

/** Logs in over `sock` when given (a chain's previous hop, or a TCP socket already connected). */
const negotiated = new WeakMap<object, string>();

/** The key exchange a connection from dialSsh() negotiated (mlkem768x25519-sha256: post-quantum). */
export function negotiatedKex(client: object): string | null {
  return negotiated.get(client) ?? null;
}

export function dialSsh(u: SshTarget, sock: Duplex | undefined, opts: DialOptions): Promise<InstanceType<typeof Client>> {
  return new Promise((resolve, reject) => {
    const who = `${u.role} ${u.name} (${u.host}:${u.port})`;
    let privateKey: Buffer | undefined;
    if (u.identity !== undefined) {
      try {
        privateKey = fs.readFileSync(u.identity);
      } catch (err) {
        reject(new UpstreamDialError(u.name, `cannot read identity ${u.identity}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`));
        return;
      }
    }
    const files = [u.knownHosts, ...(u.hostKeyPolicy === 'accept-new' ? [opts.ownKnownHosts] : [])];
    const known = readKnownHosts(files);
    const preferred = knownTypes(known, u.host, u.port);
    const all = serverAlgorithms().serverHostKey;
    let hostKeyProblem: string | undefined;
    // A socket of ssh2's own (no previous hop to ride on) takes a descriptor of the budget.
    const giveBack = sock ? () => {} : fdBudget().taken();
    if (!giveBack) {
      reject(new UpstreamDialError(u.name, `${who}: holdfast has no file descriptor to spare (raise its LimitNOFILE)`));
      return;
    }
    const client = new Client();
    client.once('close', giveBack);
    client.once('handshake', (n: { kex: string }) => negotiated.set(client, n.kex));
    const fail = (message: string) => {
      client.removeAllListeners('ready');
      client.on('error', () => {});
      client.end();
      reject(new UpstreamDialError(u.name, message));
    };
    client.once('ready', () => {
      client.removeAllListeners('error');
      resolve(client);
    });
    client.once('error', (err: Error & { level?: string }) => {
      if (hostKeyProblem) return fail(hostKeyProblem);
      let why = err.message;
      if (err.level === 'client-authentication') {
        why = signWithAgent
          ? `authentication as ${u.user} with the keys of your forwarded agent failed (connect with ssh -A, and have a key the ${u.role} accepts loaded in your agent)`
          : `authentication as ${u.user} failed (is holdfast's key ${u.identity}.pub in the ${u.role}'s authorized_keys?)`;
      } else if (err.level === 'agent') {
        why = `your forwarded agent could not be used (${err.message}): connect with ssh -A`;
      }
      fail(`${who}: ${why}`);
    });
    client.once('connect', () => (transport(client) as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true));
    // An explicit auth list: with `identity`, a configured agent is only for forwarding, never tried.
    const signWithAgent = privateKey === undefined && u.agent !== undefined;
    const authHandler = signWithAgent ? [{ type: 'agent', username: u.user, agent: u.agent }] : [{ type: 'publickey', username: u.user, key: privateKey }];
    client.connect({
      host: u.host,
      port: u.port,
      ...(sock ? { sock: sock as unknown as Readable } : {}),
      username: u.user,
      // agentForward stays off for the connection; each session that asked for it (ssh -A) requests
      // it on its own channel.
      ...(u.agent ? { agent: u.agent } : {}),
      authHandler: authHandler as never,
      readyTimeout: opts.connectTimeoutMs,
      keepaliveInterval: 0, // holdfast runs its own monitor (ssh2's resets only on replies)
      algorithms: { serverHostKey: [...preferred, ...all.filter((a) => !preferred.includes(a))] as never },
      hostVerifier: (blob: Buffer) => {
        const v = checkHostKey(known, u.host, u.port, blob);
        const fields = { upstream: u.name, role: u.role, host: u.host, port: u.port, keyType: keyType(blob), fingerprint: fingerprintOf(blob) };
        if (v.verdict === 'ok') return true;
        if (v.verdict === 'changed' || v.verdict === 'revoked') {
          hostKeyProblem = `${who}: host key ${v.verdict === 'changed' ? 'CHANGED' : 'REVOKED'} (${fields.fingerprint}; known at ${v.entry.file}:${v.entry.line}): refused`;
          opts.events.emit('upstream-host-key-changed', { ...fields, verdict: v.verdict, knownAt: `${v.entry.file}:${v.entry.line}`, why: `possible man-in-the-middle, or the ${u.role} was reinstalled: check, then fix known_hosts` });
          return false;
        }
        if (u.hostKeyPolicy === 'accept-new') {
          appendKnownHost(opts.ownKnownHosts, u.host, u.port, blob);
          opts.events.emit('upstream-host-key-accepted', { ...fields, recordedIn: opts.ownKnownHosts });
          return true;
        }
        hostKeyProblem = `${who}: unknown host key ${fields.fingerprint}: refused (hostKeyPolicy strict; add it to ${u.knownHosts ?? 'knownHosts'})`;
        opts.events.emit('upstream-host-key-unknown', { ...fields, why: 'not in knownHosts; refused under hostKeyPolicy strict' });
        return false;
      },
    });
  });
}
