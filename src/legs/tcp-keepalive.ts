/**
 * Applies TCP keepalive options to an upstream socket and reads them back.
 *
 * Node 20 alone sets only TCP_KEEPIDLE (socket.setKeepAlive), with TCP_KEEPINTVL fixed at 1 s and
 * TCP_KEEPCNT at 10 by libuv, and every later setKeepAlive() call resets those two. Interval, count
 * and TCP_USER_TIMEOUT come from `net-keepalive` (setsockopt through ffi-rs's prebuilt binaries),
 * applied after setKeepAlive; all four are read back with getsockopt (TCP_KEEPIDLE's getter is
 * patches/net-keepalive+4.0.28.patch). Applying again to a live socket (a reload) works the same:
 * the kernel counts the idle time already passed against the new TCP_KEEPIDLE. If it cannot load, holdfast says so at start-up and falls back to
 * Node's setKeepAlive alone (idle = interval, then libuv's 1 s x 10).
 */
import type net from 'node:net';
import { createRequire } from 'node:module';
import type { TcpKeepaliveOptions } from '../keepalive/tcp-options.js';

interface NetKeepalive {
  /** From patches/net-keepalive+4.0.28.patch: TCP_KEEPIDLE read back. */
  getKeepAliveTime(s: net.Socket): number;
  setKeepAliveInterval(s: net.Socket, ms: number): boolean;
  getKeepAliveInterval(s: net.Socket): number;
  setKeepAliveProbes(s: net.Socket, n: number): boolean;
  getKeepAliveProbes(s: net.Socket): number;
  setUserTimeout(s: net.Socket, ms: number): boolean;
  getUserTimeout(s: net.Socket): number;
}

let lib: NetKeepalive | null | undefined;
let loadError: string | undefined;

function load(): NetKeepalive | null {
  if (lib !== undefined) return lib;
  try {
    lib = createRequire(import.meta.url)('net-keepalive') as NetKeepalive;
  } catch (err) {
    lib = null;
    loadError = err instanceof Error ? err.message.split('\n')[0] : String(err);
  }
  return lib;
}

/** null when per-socket interval/count/user-timeout can be set; otherwise why not. */
export function tcpKeepaliveUnavailable(): string | null {
  return load() ? null : (loadError ?? 'net-keepalive did not load');
}

/** What the socket really has, read back with getsockopt. */
export interface AppliedTcpKeepalive {
  readonly enabled: boolean;
  readonly idleS: number;
  readonly intervalS: number | null;
  readonly count: number | null;
  readonly userTimeoutMs: number | null;
  readonly degraded?: string;
}

export function applyTcpKeepalive(sock: net.Socket, o: TcpKeepaliveOptions): AppliedTcpKeepalive {
  if (!o.enable) {
    sock.setKeepAlive(false);
    return { enabled: false, idleS: 0, intervalS: null, count: null, userTimeoutMs: null };
  }
  // setKeepAlive first: it rewrites TCP_KEEPINTVL/TCP_KEEPCNT to libuv's 1 s / 10.
  sock.setKeepAlive(true, o.idleS * 1000);
  const k = load();
  if (!k) return { enabled: true, idleS: o.idleS, intervalS: 1, count: 10, userTimeoutMs: 0, degraded: loadError ?? 'net-keepalive missing' };
  try {
    k.setKeepAliveInterval(sock, o.intervalS * 1000);
    k.setKeepAliveProbes(sock, o.count);
    k.setUserTimeout(sock, o.userTimeoutMs);
    return {
      enabled: true,
      // Without the patch's getter: what was asked of Node (test/unit/tcp-keepalive.test.ts fails then).
      idleS: typeof k.getKeepAliveTime === 'function' ? k.getKeepAliveTime(sock) / 1000 : o.idleS,
      intervalS: k.getKeepAliveInterval(sock) / 1000,
      count: k.getKeepAliveProbes(sock),
      userTimeoutMs: k.getUserTimeout(sock),
    };
  } catch (err) {
    // The socket may have closed between connect and here; report rather than throw.
    return { enabled: true, idleS: o.idleS, intervalS: null, count: null, userTimeoutMs: null, degraded: String(err) };
  }
}
