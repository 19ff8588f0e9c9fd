/**
 * One write system call per event-loop turn on a busy socket, instead of one per SSH packet.
 *
 * ssh2 writes every packet with its own socket.write() (32 KiB of channel data, or a 100-byte
 * keepalive reply), and a relay pipe writes each chunk as it comes. On the first write of a turn the
 * socket is corked; it is uncorked on the next tick, so libuv hands everything written in between to
 * the kernel with one writev. Backpressure is unchanged (write() still returns false past the
 * high-water mark), and nothing waits longer than the current turn, so latency does not move.
 */
import type net from 'node:net';

export function coalesceWrites(socket: net.Socket): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as net.Socket['write'];
}
