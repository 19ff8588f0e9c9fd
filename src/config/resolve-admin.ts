/**
 * The admin listener resolved: its token file read at load (a missing or weak token is a config
 * error), and a listener other hosts can reach without a token is a warning.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { ConfigParsed } from './schema.js';
import type { SemanticProblem } from './resolve.js';
import { resolveConfigPath } from './paths.js';

export interface AdminListener {
  readonly address: string;
  readonly port: number;
  /** admin.tokenFile, made absolute, and the token read from it at load. */
  readonly auth?: { readonly tokenFile: string; readonly token: string } | undefined;
}

/** The shortest admin token accepted (`openssl rand -hex 32` gives 64 characters). */
export const ADMIN_TOKEN_MIN = 16;

/**
 * The admin listener; its token file read now, so a missing or weak token is a config error, and a
 * listener reachable from other hosts without one is a warning (it shows users and their addresses).
 */
export function resolveAdmin(a: NonNullable<ConfigParsed['admin']>, baseDir: string, problems: SemanticProblem[], warnings: string[]): AdminListener {
  let auth: AdminListener['auth'];
  if (a.tokenFile !== undefined) {
    const tokenFile = resolveConfigPath(a.tokenFile, baseDir);
    const make = `create one: (umask 077; openssl rand -hex 32 > ${tokenFile})`;
    try {
      const token = fs.readFileSync(tokenFile, 'utf8').trim();
      if (token.length < ADMIN_TOKEN_MIN || /\s/.test(token)) {
        problems.push({ path: ['admin', 'tokenFile'], message: `${tokenFile} holds ${/\s/.test(token) ? 'a token with spaces or several lines' : `a token of ${token.length} characters (at least ${ADMIN_TOKEN_MIN})`}; ${make}` });
      } else {
        auth = { tokenFile, token };
        const mode = fs.statSync(tokenFile).mode & 0o777;
        if (mode & 0o077) warnings.push(`admin.tokenFile: ${tokenFile} is open to other users (mode ${mode.toString(8)}): chmod 600 ${tokenFile}`);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({ path: ['admin', 'tokenFile'], message: code === 'ENOENT' ? `${tokenFile} does not exist; ${make}` : `cannot read ${tokenFile}: ${code ?? (err as Error).message}` });
    }
  }
  if (!net.isIP(a.address)) {
    warnings.push(`admin.address: "${a.address}" is a name: holdfast binds the first address it resolves to and keeps every address it resolves to from being a destination; write the address itself (127.0.0.1 or ::1) so what is bound is what is checked`);
  }
  const loopback = a.address === 'localhost' || a.address === '::1' || /^(::ffff:)?127\./.test(a.address);
  if (a.tokenFile === undefined && !loopback) {
    warnings.push(`admin: ${a.address}:${a.port} is reachable from other hosts and has no tokenFile: anyone who reaches it reads /sessions (users, client addresses) and /metrics; set admin.tokenFile, or listen on 127.0.0.1`);
  }
  return { address: a.address, port: a.port, ...(auth ? { auth } : {}) };
}

