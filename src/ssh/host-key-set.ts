/**
 * The host keys a server offers, from the config: each hostKeys file (created when missing, as
 * sshd's packaging does), then each hostCertificates file matched to the key it certifies.
 * Certificates come first, so a client that trusts the CA gets the certificate.
 */
import type { Events } from '../events.js';
import { ListenError } from '../ingress/listen.js';
import { loadOrCreateHostKey } from './host-keys.js';
import { certifiedHostKey, certifies, describeHostCertificate, readHostCertificate } from './host-certificates.js';
import type { ParsedKey } from './ssh2.js';

export function loadHostKeySet(c: { readonly hostKeys: readonly string[]; readonly hostCertificates: readonly string[] }, events: Events): (Buffer | ParsedKey)[] {
  const keys = c.hostKeys.map((file) => {
    const { key, created } = loadOrCreateHostKey(file);
    if (created) events.emit('host-key-created', { file, type: 'ssh-ed25519' });
    return key;
  });
  const certified: ParsedKey[] = c.hostCertificates.map((file) => {
    const hc = readHostCertificate(file);
    const key = hc.ok ? keys.find((k) => certifies(hc.cert, k)) : undefined;
    if (!hc.ok || !key) throw new ListenError(`hostCertificates: ${hc.ok ? `${file} certifies none of hostKeys` : hc.why}`);
    events.emit('host-certificate', { file, detail: describeHostCertificate(hc) });
    return certifiedHostKey(key, hc.cert);
  });
  return [...certified, ...keys];
}
