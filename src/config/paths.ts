import os from 'node:os';
import path from 'node:path';

/**
 * holdfast's state directory (generated host keys live here): $HOLDFAST_STATE_DIR, else
 * $XDG_STATE_HOME/holdfast, else ~/.local/state/holdfast. The systemd unit sets HOLDFAST_STATE_DIR to
 * its StateDirectory.
 */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOLDFAST_STATE_DIR) return path.resolve(env.HOLDFAST_STATE_DIR);
  if (env.XDG_STATE_HOME) return path.resolve(env.XDG_STATE_HOME, 'holdfast');
  return path.join(os.homedir(), '.local', 'state', 'holdfast');
}

/** `~` = the home of the user holdfast runs as; a relative path is relative to the config file's folder. */
export function resolveConfigPath(p: string, baseDir: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return path.resolve(baseDir, p);
}

/**
 * User names that may be put into a path (`%u`): no "/", no leading "." (so never "." or ".."), no
 * control characters. OpenSSH only expands names of existing system users; holdfast's users are not
 * system users, so the name itself must be safe.
 */
const SAFE_USER = /^[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}$/;
export function isSafeUserName(user: string): boolean {
  return SAFE_USER.test(user);
}

/** Expands `%u` and `%%` in a path template. Call only with a name isSafeUserName accepted. */
export function expandUserTemplate(template: string, user: string): string {
  return template.replace(/%[u%]/g, (t) => (t === '%%' ? '%' : user));
}

export function hasUserTemplate(template: string): boolean {
  return /%u/.test(template.replace(/%%/g, ''));
}
