/**
 * Binding one client listener: a net.Server with TCP_NODELAY whose bind errors read as what to do
 * (ListenError: the worker exits 78, a config error), and whose accept errors after that (EMFILE:
 * out of descriptors, libuv closed the connection) go to `acceptError` instead of crashing anyone.
 */
import net from 'node:net';

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export class ListenError extends Error {
  override name = 'ListenError';
}

export function bindListener(address: string, port: number, onSocket: (sock: net.Socket) => void, acceptError: (err: NodeJS.ErrnoException) => void): Promise<{ server: net.Server; bound: BoundAddress }> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer({ noDelay: true, pauseOnConnect: false }, (sock) => {
      // An 'error' listener from the socket's first moment: a reset while the PROXY header is read
      // or the primary is asked for a startup slot would otherwise be an uncaught exception, and the
      // worker would exit with every session on it. The Session adds its own (it keeps the reason);
      // a socket error is always followed by 'close', which is what ends a connection.
      sock.on('error', ignoreSocketError);
      onSocket(sock);
    });
    srv.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is in use (another holdfast or sshd?); pick another listen.port'
          : err.code === 'EACCES'
            ? 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)'
            : err.code === 'EADDRNOTAVAIL'
              ? 'no such local address; check listen.address'
              : (err.code ?? err.message);
      reject(new ListenError(`cannot listen on ${address}:${port}: ${why}`));
    });
    srv.listen({ host: address, port }, () => {
      srv.removeAllListeners('error');
      srv.on('error', acceptError);
      const a = srv.address() as net.AddressInfo;
      resolve({ server: srv, bound: { address: a.address, port: a.port } });
    });
  });
}

/** The error is seen again by whoever owns the socket, or by nobody if it is gone. */
function ignoreSocketError(): void {}
