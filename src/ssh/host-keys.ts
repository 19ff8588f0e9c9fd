/**
 * Host keys: OpenSSH-format private keys. A configured key that does not exist is created (ed25519,
 * mode 0600, folder 0700), as sshd's packaging does with ssh-keygen -A. ssh2 cannot read PKCS#8.
 */
import fs from 'node:fs';
import path from 'node:path';
import { utils } from './ssh2.js';

export type HostKeyState =
  | { readonly state: 'ok'; readonly type: string }
  | { readonly state: 'missing' }
  | { readonly state: 'bad'; readonly message: string };

export function inspectHostKey(file: string): HostKeyState {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const blocker = nearestExistingAncestor(path.dirname(file));
      if (blocker && !fs.statSync(blocker).isDirectory()) {
        return { state: 'bad', message: `cannot create host key: ${blocker} is not a directory` };
      }
      // serve creates the key (and the folders above it): whoever runs this must be able to.
      if (blocker && !writable(blocker)) return { state: 'bad', message: cannotCreate(file, blocker) };
      return { state: 'missing' };
    }
    if (code === 'EISDIR') return { state: 'bad', message: `${file} is a directory, not a host key file` };
    return { state: 'bad', message: `cannot read host key ${file}: ${code ?? String(err)}` };
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    return { state: 'bad', message: `${file} is not a usable host key (${parsed.message}); holdfast reads OpenSSH-format private keys (ssh-keygen -t ed25519 -N '' -f FILE)` };
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) return { state: 'bad', message: `${file} holds no private key` };
  // sshd refuses a private key others can read (sshkey_perm_ok, "UNPROTECTED PRIVATE KEY FILE"):
  // world-readable always; group-readable when the file is holdfast's own (a root-owned key shared
  // with holdfast's group, 0640, is the usual way to hand a key to a non-root daemon).
  const st = fs.statSync(file);
  const uid = process.getuid?.() ?? 0;
  if ((st.mode & 0o004) !== 0 || (st.uid === uid && (st.mode & 0o077) !== 0)) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    return { state: 'bad', message: `${file} has mode ${mode}: a private key must not be readable by others; run chmod 600 ${file}` };
  }
  return { state: 'ok', type: key.type };
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function cannotCreate(file: string, dir: string, code = 'EACCES'): string {
  const uid = process.getuid?.() ?? 0;
  return `cannot create host key ${file}: ${dir} is not writable by this user (uid ${uid}, ${code}); create the key as its owner (ssh-keygen -t ed25519 -N '' -f ${file}) or give the service user a folder it owns (the unit's StateDirectory=)`;
}

/** A host key that is missing and cannot be created: an operator's fix, not an internal error. */
export class HostKeyError extends Error {
  override name = 'HostKeyError';
}

function nearestExistingAncestor(dir: string): string | null {
  let d = dir;
  for (let i = 0; i < 64; i++) {
    if (fs.existsSync(d)) return d;
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
  return null;
}

/**
 * ssh2 1.17.0's generateKeyPairSync('ed25519') writes a malformed key about 3 times in 1,000 (neither
 * ssh2 nor ssh-keygen can load it: "error in libcrypto"). Every generated key is therefore parsed
 * and test-signed before it is used; a bad one is thrown away and generated again.
 */
export function generateHostKey(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'holdfast host key' });
    const parsed = utils.parseKey(pair.private);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key || key instanceof Error) continue;
    const probe = Buffer.from('holdfast host key self-test');
    const sig = key.sign(probe);
    if (sig instanceof Error || key.verify(probe, sig) !== true) continue;
    return pair;
  }
  throw new Error('could not generate a usable ed25519 host key (ssh2 generateKeyPairSync)');
}

/** Reads the key, creating it first when missing. Returns the key bytes and whether it was created. */
export function loadOrCreateHostKey(file: string): { key: Buffer; created: boolean } {
  try {
    return { key: fs.readFileSync(file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = generateHostKey();
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': never overwrite a key another process created meanwhile.
    fs.writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    fs.writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new HostKeyError(cannotCreate(file, nearestExistingAncestor(path.dirname(file)) ?? path.dirname(file), code));
    if (code !== 'EEXIST') throw err;
    return { key: fs.readFileSync(file), created: false };
  }
  return { key: Buffer.from(pair.private), created: true };
}
