/**
 * Reads the PROXY protocol header from a freshly accepted socket, within a time and size bound, and
 * leaves the socket paused with every byte after the header put back (ssh2 reads from there on).
 * Who may send a header (`proxyProtocol.trusted`) is decided before: see `ProxyListener`.
 */
import net from 'node:net';
import { parseProxyHeader, type ProxyHeader } from './proxy-protocol.js';
import { unmapIPv4 } from '../routing/canonical.js';
import { inBlockList, parseSubnet } from '../routing/destination.js';

/** How long a balancer has to send the header: it sends it with (or before) the client's first byte. */
export const PROXY_HEADER_TIMEOUT_MS = 3000;

export type ProxyRead = { readonly ok: true; readonly header: ProxyHeader } | { readonly ok: false; readonly cause: ProxyRefusal; readonly why: string; readonly bytes: number };

/** Why a PROXY listener closed a connection before any SSH byte (a metric label, the log's `cause`). */
export type ProxyRefusal = 'untrusted' | 'invalid' | 'timeout' | 'closed';

export function readProxyHeader(socket: net.Socket, timeoutMs = PROXY_HEADER_TIMEOUT_MS): Promise<ProxyRead> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (r: ProxyRead, rest?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.pause();
      if (rest?.length) socket.unshift(rest);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const r = parseProxyHeader(buf);
      if (r.status === 'incomplete') return;
      if (r.status === 'invalid') finish({ ok: false, cause: 'invalid', why: r.why, bytes: buf.length });
      else finish({ ok: true, header: r.header }, buf.subarray(r.length));
    };
    const onClosed = (): void => finish({ ok: false, cause: 'closed', why: `closed after ${buf.length} bytes, before a whole PROXY protocol header`, bytes: buf.length });
    const timer = setTimeout(
      () => finish({ ok: false, cause: 'timeout', why: `no whole PROXY protocol header within ${timeoutMs} ms (${buf.length} bytes received)`, bytes: buf.length }),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
  });
}

/** A listener's `proxyProtocol.trusted`: the balancers that may tell holdfast who the client is. */
export class ProxyTrust {
  private readonly lists: NonNullable<ReturnType<typeof parseSubnet>>[];

  /** `cidrs` as the schema checked them (parseSubnet): "addr/bits" or a bare address. */
  constructor(readonly cidrs: readonly string[]) {
    this.lists = cidrs.map((c) => parseSubnet(c)!);
  }

  trusts(ip: string): boolean {
    const a = unmapIPv4(ip);
    return this.lists.some((l) => inBlockList(l, a));
  }
}
