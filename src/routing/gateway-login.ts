/**
 * Gateway logins carry the target in the user name, as sshpiper and Warpgate users know it:
 * `alice+db1.internal`, `alice+db1.internal+2200`, `alice+[2001:db8::7]+2200`. The part before the
 * first `+` is the user holdfast authenticates (authorized_keys, routes' `users`); the rest names the
 * target. A plain name (no `+`) is an ordinary login for `ssh -J`. Pure; table-tested.
 */
import net from 'node:net';

export interface GatewayLogin {
  readonly user: string;
  /** Undefined for a plain login. */
  readonly target?: { readonly host: string; readonly port: number } | undefined;
}

export type GatewayLoginResult = { ok: true; value: GatewayLogin } | { ok: false; user: string; message: string };

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$/;

export function parseGatewayLogin(name: string): GatewayLoginResult {
  const plus = name.indexOf('+');
  if (plus === -1) return { ok: true, value: { user: name } };
  const user = name.slice(0, plus);
  let rest = name.slice(plus + 1);
  const bad = (why: string): GatewayLoginResult => ({
    ok: false,
    user,
    message: `cannot read the target in "${name}": ${why} (write user+host or user+host+port, e.g. ${user || 'alice'}+db1.internal+2200)`,
  });
  if (!user) return bad('no user name before the +');
  let port = 22;
  let host: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) return bad('missing ]');
    host = rest.slice(1, close);
    if (!net.isIPv6(host)) return bad(`${host} is not an IPv6 address`);
    rest = rest.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith('+')) return bad('expected +port after ]');
      const p = parsePort(rest.slice(1));
      if (p === undefined) return bad(`bad port "${rest.slice(1)}"`);
      port = p;
    }
  } else {
    const parts = rest.split('+');
    if (parts.length > 2) return bad('too many + signs');
    host = parts[0]!;
    if (parts.length === 2) {
      const p = parsePort(parts[1]!);
      if (p === undefined) return bad(`bad port "${parts[1]}"`);
      port = p;
    }
    if (!HOST_NAME.test(host)) return bad(host ? `"${host}" is not a host name or address` : 'no target after the +');
  }
  return { ok: true, value: { user, target: { host, port } } };
}

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `%u` in the gateway's `user:` is the user's own name; `%%` is a literal %. */
export function gatewayUser(template: string, user: string): string {
  return template.replace(/%[%u]/g, (m) => (m === '%%' ? '%' : user));
}
