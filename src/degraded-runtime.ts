/**
 * What runs slower or weaker than it should on this machine (a native binding not built), warned
 * once at start with the command that fixes it.
 */
import type { Events } from './events.js';
import { tcpKeepaliveUnavailable } from './legs/tcp-keepalive.js';
import { nativeCryptoAvailable } from './ssh/ssh2.js';

/** What runs slower or weaker than it should (a binding not built): warned at start; returns why TCP keepalive is degraded, or null. */
export function warnDegradedRuntime(events: Events): string | null {
  if (!nativeCryptoAvailable()) {
    events.emit('native-crypto-missing', { why: "ssh2's native crypto binding is not built: AES-GCM runs ~7x slower", fix: 'install g++, make and python3, then run: npm rebuild ssh2' });
  }
  const tcpKa = tcpKeepaliveUnavailable();
  if (tcpKa) {
    events.emit('tcp-keepalive-degraded', {
      why: `per-socket TCP keepalive interval/count/user-timeout unavailable (${tcpKa})`,
      effect: 'upstream TCP legs fall back to Node setKeepAlive: first probe after the interval, then 1 s x 10 probes',
      fix: 'reinstall dependencies (npm ci) so net-keepalive and its ffi-rs binary are present',
    });
  }
  return tcpKa;
}

