/**
 * The upstream leg of `ssh -J`: a raw TCP connection from holdfast to exactly the address that the
 * route was matched on (no second DNS lookup). Connect time is bounded; TCP_NODELAY is set because the
 * bytes are interactive SSH (Nagle + delayed ACK cost ~45 ms a round trip).
 */
import net from 'node:net';
import { fdBudget } from '../fd-budget.js';

export interface ConnectTarget {
  readonly address: string;
  readonly port: number;
  readonly timeoutMs: number;
}

export class ConnectError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
  EADDRNOTAVAIL: 'address not available',
  EMFILE: 'holdfast is out of file descriptors',
  // holdfast's own plan (src/fd-budget.ts): refused before the process runs out.
  FDBUDGET: 'holdfast has no file descriptor to spare (raise its LimitNOFILE)',
};

export function describeConnectError(code: string): string {
  return REASONS[code] ?? code.toLowerCase();
}

/**
 * Resolves with a connected socket (allowHalfOpen, so a target's FIN does not end our side before the
 * client has finished sending), or rejects with a ConnectError. `signal` aborts a pending connect
 * when the session ends first.
 */
export function connectTcp(target: ConnectTarget, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const giveBack = fdBudget().taken();
    if (!giveBack) return reject(new ConnectError('FDBUDGET', `${describeConnectError('FDBUDGET')} (${target.address}:${target.port})`));
    const sock = net.connect({
      host: target.address,
      port: target.port,
      family: net.isIP(target.address),
      allowHalfOpen: true,
      noDelay: true,
      // Room for one socket read's worth of ssh2 packets (64 KiB: two of 32 KiB); with the default
      // 16 KiB mark every write returned false and the pipe from the channel paused and resumed once
      // per packet (upload CPU 0.76-0.9 s -> 0.57-0.69 s per 256 MiB). Not more: what waits here is
      // held on top of the channel's window when the target stops reading (at 256 KiB, 0.25 of the
      // 2.4 MiB of buffers per stalled channel; 64 KiB: 2.1, and upload CPU alike, 2.1-2.6 s per
      // 256 MiB through the bench lab either way).
      writableHighWaterMark: 64 * 1024,
    } as net.NetConnectOpts);
    const fail = (code: string) => {
      cleanup();
      sock.destroy();
      reject(new ConnectError(code, `${describeConnectError(code)} (${target.address}:${target.port})`));
    };
    const timer = setTimeout(() => fail('ETIMEDOUT'), target.timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => fail(err.code ?? 'EIO');
    const onAbort = () => fail('ECANCELED');
    const onConnect = () => {
      cleanup();
      sock.setNoDelay(true);
      resolve(sock);
    };
    function cleanup() {
      clearTimeout(timer);
      sock.off('error', onError);
      sock.off('connect', onConnect);
      signal?.removeEventListener('abort', onAbort);
    }
    sock.once('close', giveBack);
    sock.once('error', onError);
    sock.once('connect', onConnect);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
