/**
 * The certificate settings resolved: paths made absolute and files read at load, so that a typo or a
 * bad key is a config error, not a login refused later.
 */
import fs from 'node:fs';
import type { ConfigParsed } from './schema.js';
import type { SemanticProblem } from './resolve.js';
import { hasUserTemplate, resolveConfigPath } from './paths.js';
import { strictModes } from '../ssh/strict-modes.js';
import { certifies, readHostCertificate } from '../ssh/host-certificates.js';
import { parseCaKeys } from '../ssh/user-ca.js';
import { RevocationList } from '../ssh/krl.js';

/**
 * trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys and hostCertificates: paths made absolute,
 * files read now so a typo or a bad key is a config error, not a login refused later.
 */
export function resolveCertificates(c: ConfigParsed, baseDir: string, hostKeys: readonly string[], problems: SemanticProblem[], warnings: string[]) {
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolveConfigPath(p, baseDir));
  const trustedUserCAKeys = abs(c.trustedUserCAKeys);
  const authorizedPrincipalsFile = abs(c.authorizedPrincipalsFile);
  const revokedKeys = abs(c.revokedKeys);
  const readable = (file: string, key: string, parse: (d: Buffer) => unknown, what: string) => {
    try {
      parse(fs.readFileSync(file));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({ path: [key], message: code === 'ENOENT' ? `${file} does not exist (${what})` : code ? `cannot read ${file}: ${code}` : `${file}: ${(err as Error).message}` });
    }
  };
  if (trustedUserCAKeys) readable(trustedUserCAKeys, 'trustedUserCAKeys', (d) => parseCaKeys(d.toString('utf8')), 'OpenSSH public keys of the user CAs');
  // Whoever can write these files can add a CA (every user name, every key) or lift a revocation.
  for (const [key, file] of [['trustedUserCAKeys', trustedUserCAKeys], ['revokedKeys', revokedKeys]] as const) {
    if (!file || !fs.existsSync(file)) continue;
    const unsafe = strictModes(file, fs.statSync(file));
    if (unsafe) warnings.push(`${key}: ${unsafe}; whoever can write it decides who logs in`);
  }
  if (revokedKeys) readable(revokedKeys, 'revokedKeys', (d) => RevocationList.parse(d), 'a KRL from ssh-keygen -k, or public keys');
  if (authorizedPrincipalsFile && !trustedUserCAKeys) problems.push({ path: ['authorizedPrincipalsFile'], message: 'only applies to certificates from trustedUserCAKeys, which is not set' });
  if (authorizedPrincipalsFile && !hasUserTemplate(authorizedPrincipalsFile)) {
    c.routes.forEach((r, i) => {
      if (r.users && r.users.some((u) => u !== '*')) {
        problems.push({ path: ['routes', i, 'users'], message: `users ${JSON.stringify(r.users)} cannot be enforced for certificates: authorizedPrincipalsFile ${authorizedPrincipalsFile} is one file for every user name; put %u in it` });
      }
    });
  }
  const hostCertificates = (c.hostCertificates ?? []).map((p) => resolveConfigPath(p, baseDir));
  hostCertificates.forEach((file, i) => {
    const hc = readHostCertificate(file);
    if (!hc.ok) return problems.push({ path: ['hostCertificates', i], message: hc.why });
    const keyFile = hostKeys.find((k) => fs.existsSync(k) && certifies(hc.cert, fs.readFileSync(k)));
    if (!keyFile) {
      problems.push({ path: ['hostCertificates', i], message: `${file} certifies none of hostKeys (${hostKeys.join(', ')}): sign ${hostKeys[0]}.pub with ssh-keygen -s CA -h` });
    } else if (hc.cert.validBefore !== 0xffffffffffffffffn && hc.cert.validBefore * 1000n <= BigInt(Date.now())) {
      warnings.push(`hostCertificates: ${file} expired at ${new Date(Number(hc.cert.validBefore) * 1000).toISOString()}; clients that trust only the CA will refuse holdfast`);
    }
  });
  return { trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys, hostCertificates };
}

