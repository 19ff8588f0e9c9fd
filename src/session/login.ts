/**
 * One connection's login: each authentication attempt judged (src/session/auth-verdict.ts), the
 * failures counted against maxAuthTries, maxConnectionsPerUser held once a key is accepted, and the
 * lines that say what happened (auth-accepted, auth-failed, login-refused).
 */
import type { AuthContext, PublicKeyAuthContext } from '../ssh/ssh2.js';
import type { LoginKey } from '../ssh/authorized-keys.js';
import { fingerprintOf } from '../ssh/known-hosts.js';
import type { SessionCloseReason } from '../close-reasons.js';
import type { EventMap, EventName, Who } from '../events.js';
import { authVerdict } from './auth-verdict.js';
import type { SessionContext } from './scope.js';

/** What a login attempt sees of its session. */
export interface LoginHost {
  readonly ctx: SessionContext;
  readonly clientIp: string;
  readonly closing: boolean;
  /** The user name the client gave (gateway mode: without `+target`). */
  readonly user: string;
  who(): Who;
  failure<K extends EventName>(event: K, fields: EventMap[K]): void;
  close(reason: SessionCloseReason, detail?: string): void;
}

export class Login {
  /** The authorized_keys entry that let the user in (a reload may replace it: rekey). */
  key: LoginKey | undefined;
  failures = 0;
  private sawNone = false;
  /** Gives back this login's place in maxConnectionsPerUser. */
  release: () => void = () => {};

  /** `seen`: gateway mode's target and the first handshake's key exchange, for the lines. */
  attempt(h: LoginHost, authCtx: AuthContext, seen: { readonly target: string | undefined; readonly kex: string | undefined }): void {
    if (h.closing) return authCtx.reject();
    const pk = authCtx.method === 'publickey' ? (authCtx as PublicKeyAuthContext) : undefined;
    const t = seen.target;
    const key = pk ? { keyType: pk.key.algo, fingerprint: fingerprintOf(pk.key.data) } : undefined;
    const fields = { ...h.who(), method: authCtx.method, ...(t ? { target: t } : {}), ...key, kex: seen.kex ?? null };
    const v = authVerdict(
      { method: authCtx.method, user: h.user, key: pk?.key, hashAlgo: pk?.hashAlgo, signature: pk?.signature, blob: pk?.blob },
      h.ctx.keys(),
      { sawNone: this.sawNone, clientIp: h.clientIp, now: new Date() },
      h.ctx.certificates(),
    );
    if (v.kind === 'methods') {
      this.sawNone = true;
      return authCtx.reject(['publickey']);
    }
    if (v.kind === 'key-ok') return authCtx.accept(); // "this key would do": the client signs next
    if (v.kind === 'accept') {
      const login = h.ctx.holdLogin(h.user);
      if (typeof login !== 'function') {
        const why = `${h.user} holds ${login.held} connections already (maxConnectionsPerUser ${login.max})`;
        h.failure('login-refused', { ...fields, why, connections: login.held });
        h.close('user-connection-limit', why);
        return authCtx.reject();
      }
      this.release = login;
      this.key = v.entry;
      const { fingerprint, ...certificate } = v.entry.certificate ?? {};
      h.ctx.events.emit('auth-accepted', { ...fields, ...key!, ...(fingerprint ? { fingerprint, certificate } : {}), keyFile: v.file, keyLine: v.entry.line });
      return authCtx.accept();
    }
    const max = h.ctx.config().maxAuthTries;
    this.failures++;
    const { fingerprint, ...certificate } = v.certificate ?? {};
    h.failure('auth-failed', { ...fields, why: v.why, ...(v.rule ? { rule: v.rule } : {}), ...(fingerprint ? { fingerprint, certificate } : {}), failures: this.failures });
    if (this.failures >= max) h.close('auth-failed', `${this.failures} failed authentication attempts (maxAuthTries ${max})`);
    if (!h.closing) authCtx.reject(['publickey']);
  }
}
