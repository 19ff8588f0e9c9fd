import net from 'node:net';

/** A TCP target on 127.0.0.1 that holds every connection: `reads` consumes what arrives, else never reads. */
export async function tcpSink(reads: boolean): Promise<{ readonly port: number; close(): void }> {
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => {
    held.push(s);
    s.on('error', () => {});
    if (reads) s.resume();
    else s.pause();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => {
      for (const s of held) s.destroy();
      srv.close();
    },
  };
}
