import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const made: string[] = [];

export function tempDir(prefix = 'holdfast-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** ssh-keygen a key pair; returns the private key path (public key at path + ".pub"). */
export function keygen(dir: string, name: string, type: 'ed25519' | 'ecdsa' | 'rsa' | 'dsa' = 'ed25519'): string {
  const file = path.join(dir, name);
  const args = ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', file];
  if (type === 'rsa') args.push('-b', '2048');
  execFileSync('ssh-keygen', args);
  return file;
}

export function publicKey(privatePath: string): string {
  return fs.readFileSync(`${privatePath}.pub`, 'utf8').trim();
}

/** "type base64" of a key pair's public half, without the comment: what known_hosts lines hold. */
export function keyBlob(privatePath: string): string {
  return publicKey(privatePath).split(' ').slice(0, 2).join(' ');
}

/** A known_hosts line for the key pair at `privatePath`, served at host:port. */
export function knownHostsLine(privatePath: string, port: number, host = '127.0.0.1'): string {
  return `[${host}]:${port} ${keyBlob(privatePath)}`;
}
