/**
 * The one import of ssh2. ssh2 is CommonJS; Node's ESM loader gives us its module.exports as the
 * default export. Everything else in holdfast imports ssh2's pieces from here (only src/ssh/ and
 * src/legs/ may), so a change of ssh2's shape shows up in one place.
 */
import { createRequire } from 'node:module';
import ssh2 from 'ssh2';

export const { Server, Client, utils, OpenSSHAgent } = ssh2;
export type { Connection, ServerChannel, AuthContext, PublicKeyAuthContext, ParsedKey, ClientChannel, BaseAgent, Session as ServerSession, PseudoTtyInfo, ExecInfo } from 'ssh2';

const require = createRequire(import.meta.url);

/** ssh2 internals we rely on; pinned ssh2 version, checked by test/unit/ssh2-internals.test.ts. */
export const ssh2Constants = require('ssh2/lib/protocol/constants.js') as {
  DEFAULT_KEX: string[];
  /** mlkem768x25519-sha256 is offered (ssh2 patch: an ML-KEM-768 implementation was found). */
  mlkemSupported: boolean;
  DEFAULT_SERVER_HOST_KEY: string[];
  DEFAULT_CIPHER: string[];
  DEFAULT_MAC: string[];
  CHANNEL_OPEN_FAILURE: Record<string, number>;
  DISCONNECT_REASON: Record<string, number>;
};

/** Where ML-KEM-768 comes from (ssh2 patch, lib/protocol/mlkem.js): node:crypto on Node >= 24.7, else @noble/post-quantum; null: no post-quantum key exchange. */
export function mlkemSource(): string | null {
  const m = require('ssh2/lib/protocol/mlkem.js') as { source: string } | null;
  return m?.source ?? null;
}

/** The post-quantum hybrid key exchange (OpenSSH >= 9.9's default from 10.0). */
export const PQ_KEX = 'mlkem768x25519-sha256';

/** True when ssh2's native crypto binding (built by node-gyp at install) is loaded. */
export function nativeCryptoAvailable(): boolean {
  try {
    const crypto = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean };
    return crypto.bindingAvailable === true;
  } catch {
    return false;
  }
}
