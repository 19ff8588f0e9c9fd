/**
 * OpenSSH certificates and KRLs made by the real ssh-keygen, for the certificate tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface CertSpec {
  /** Name of the certificate (its file is DIR/NAME-cert.pub). */
  readonly name: string;
  readonly id: string;
  /** -n; omit for none (a certificate with no principals). */
  readonly principals?: string;
  /** -V, e.g. "-5m:+1h", "20200101:20200102", "always:forever". */
  readonly validity?: string;
  readonly serial?: number;
  /** -O options, e.g. ["no-port-forwarding", "source-address=10.0.0.0/8", "clear"]. */
  readonly options?: readonly string[];
  readonly host?: boolean;
  /** -t for RSA CAs: rsa-sha2-256, rsa-sha2-512, ssh-rsa. */
  readonly sigType?: string;
}

/** Signs `keyPath`.pub with the CA private key `caPath`; returns the certificate's path. */
export function signCertificate(dir: string, caPath: string, keyPath: string, spec: CertSpec): string {
  const pub = path.join(dir, `${spec.name}.pub`);
  fs.copyFileSync(`${keyPath}.pub`, pub);
  const args = ['-q', '-s', caPath, '-I', spec.id];
  if (spec.principals !== undefined) args.push('-n', spec.principals);
  if (spec.validity) args.push('-V', spec.validity);
  if (spec.serial !== undefined) args.push('-z', String(spec.serial));
  for (const o of spec.options ?? []) args.push('-O', o);
  if (spec.host) args.push('-h');
  if (spec.sigType) args.push('-t', spec.sigType);
  execFileSync('ssh-keygen', [...args, pub], { stdio: ['ignore', 'ignore', 'pipe'] });
  return path.join(dir, `${spec.name}-cert.pub`);
}

/** The certificate blob of a -cert.pub file. */
export function certBlob(certPath: string): Buffer {
  return Buffer.from(fs.readFileSync(certPath, 'utf8').trim().split(/\s+/)[1]!, 'base64');
}

/** `ssh-keygen -k`: a KRL at DIR/NAME from spec lines ("serial: 5", "id: x", "key: ..."), tied to `caPub` if given. */
export function makeKrl(dir: string, name: string, lines: readonly string[], caPub?: string): string {
  const spec = path.join(dir, `${name}.spec`);
  fs.writeFileSync(spec, lines.join('\n') + '\n');
  const out = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-k', '-f', out, ...(caPub ? ['-s', caPub] : []), spec], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

/** `ssh-keygen -Q -f KRL FILE`: true when ssh-keygen says the key or certificate is revoked. */
export function sshKeygenRevoked(krl: string, file: string): boolean {
  try {
    execFileSync('ssh-keygen', ['-Q', '-f', krl, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    return false;
  } catch (err) {
    const out = String((err as { stdout?: Buffer }).stdout ?? '');
    if (out.includes('REVOKED')) return true;
    throw err;
  }
}

/** The SHA256 fingerprint `ssh-keygen -lf` prints for a key or certificate file. */
export function sshKeygenFingerprint(file: string): string {
  return execFileSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' }).split(' ')[1]!;
}
