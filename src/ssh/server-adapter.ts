/**
 * ssh2 Server set-up and the few private corners of ssh2 holdfast has to touch. Each is named here,
 * explained, and covered by test/unit/ssh2-internals.test.ts so a change in ssh2 fails loudly.
 */
import type net from 'node:net';
import { Server, ssh2Constants, type Connection, type ParsedKey } from './ssh2.js';

const { CHANNEL_OPEN_FAILURE, DISCONNECT_REASON } = ssh2Constants;

/**
 * ssh2's Server pings every client every 15 s on its own (Server.KEEPALIVE_CLIENT_INTERVAL), per
 * server, and `keepaliveInterval: 0` does not turn that off. holdfast runs its own per-route client-leg
 * keepalive, so the built-in one is switched off here, for the whole process.
 */
export function disableBuiltinKeepalive(): void {
  const S = Server as unknown as { KEEPALIVE_CLIENT_INTERVAL: number; KEEPALIVE_CLIENT_COUNT_MAX: number };
  S.KEEPALIVE_CLIENT_INTERVAL = 0;
  S.KEEPALIVE_CLIENT_COUNT_MAX = -1;
}

/**
 * What holdfast's server offers, best first, reviewed against ssh-audit and OpenSSH 10's defaults
 * (docs/security.md "Algorithms"): the post-quantum hybrid first (when ssh2 has ML-KEM: the patch's
 * lib/protocol/mlkem.js), then curve25519 and OpenSSH's three DH groups (FIPS-mode clients without
 * curve25519 use those). Not offered: the NIST-curve ECDH (ssh-audit "fail"; every client holdfast is
 * tested with has curve25519), diffie-hellman-group-exchange-* (advertised by ssh2 but not
 * implemented server-side: a client that insists on it fails), groups 15 and 17 (OpenSSH offers
 * neither), SHA-1 and encrypt-and-MAC MACs, and SHA-1 `ssh-rsa` host-key signatures (OpenSSH >= 8.8
 * refuses them too).
 */
const SERVER_KEX = [
  'mlkem768x25519-sha256',
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
];
/**
 * Encrypt-then-MAC SHA-2 only (for the AES-CTR ciphers; GCM and ChaCha20-Poly1305 need no MAC). A
 * client with neither an AEAD cipher nor an ETM MAC (JSch 0.1.55; Dropbear before 2020.79) cannot log
 * in: every client holdfast is tested with (OpenSSH 9.2 and 10.0, Dropbear 2022.83, PuTTY 0.78,
 * paramiko 2.12) has both.
 */
const SERVER_MAC = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'];

export function serverAlgorithms() {
  return {
    kex: SERVER_KEX.filter((k) => ssh2Constants.DEFAULT_KEX.includes(k)),
    serverHostKey: ssh2Constants.DEFAULT_SERVER_HOST_KEY.filter((k) => k !== 'ssh-rsa'),
    cipher: [...ssh2Constants.DEFAULT_CIPHER],
    hmac: SERVER_MAC.filter((m) => ssh2Constants.DEFAULT_MAC.includes(m)),
  };
}

export type ConnectionHandler = (conn: Connection, socket: net.Socket) => void;

/**
 * One ssh2 Server for the process; sockets come from holdfast's own listeners via the public
 * injectSocket(), so holdfast sets TCP options and counts connections before any SSH byte.
 */
export function createSsh2Server(hostKeys: (Buffer | ParsedKey)[], ident: string, onConnection: ConnectionHandler): InstanceType<typeof Server> {
  disableBuiltinKeepalive();
  // A parsed key goes in as { key } (ssh2 parses a bare object as { key, passphrase }).
  const keys = hostKeys.map((k) => (Buffer.isBuffer(k) ? k : { key: k }));
  const server = new Server({ hostKeys: keys, ident, algorithms: serverAlgorithms() } as ConstructorParameters<typeof Server>[0]);
  server.on('connection', (conn: Connection) => onConnection(conn, connectionSocket(conn)));
  return server;
}

/** The TCP socket under an ssh2 server-side connection (private `_sock`; ssh2 offers no accessor). */
export function connectionSocket(conn: Connection): net.Socket {
  return (conn as unknown as { _sock: net.Socket })._sock;
}

export type OpenFailure = 'prohibited' | 'connect-failed' | 'unknown-type' | 'resource-shortage';

const OPEN_FAILURE_CODE: Record<OpenFailure, number> = {
  prohibited: CHANNEL_OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED!,
  'connect-failed': CHANNEL_OPEN_FAILURE.CONNECT_FAILED!,
  'unknown-type': CHANNEL_OPEN_FAILURE.UNKNOWN_CHANNEL_TYPE!,
  'resource-shortage': CHANNEL_OPEN_FAILURE.RESOURCE_SHORTAGE!,
};

/**
 * Rejects a channel open with a chosen reason code and a description the user's ssh prints
 * ("channel 0: open failed: administratively prohibited: <description>"). ssh2's reject() always
 * sends CONNECT_FAILED with an empty description; it calls protocol.channelOpenFail synchronously,
 * so the call is redirected for exactly that one invocation.
 */
export function rejectChannel(conn: Connection, reject: () => void, why: OpenFailure, description: string): void {
  const proto = (conn as unknown as { _protocol: { channelOpenFail: (r: number, code: number, desc: string) => void } })._protocol;
  const original = proto.channelOpenFail;
  proto.channelOpenFail = function (recipient: number) {
    return original.call(this, recipient, OPEN_FAILURE_CODE[why], description);
  };
  try {
    reject();
  } finally {
    proto.channelOpenFail = original;
  }
}

/**
 * Sends SSH_MSG_DISCONNECT with a reason code and a description the user's ssh prints ("Received
 * disconnect from HOST port P:11: <description>"), then ends the socket. The description needs
 * patches/ssh2+1.17.0.patch (ssh2 1.17.0 always sent an empty one).
 */
export type DisconnectCode = 'too-many-auth-failures' | 'by-application' | 'protocol-error';

export function disconnect(conn: Connection, code: DisconnectCode, description = ''): void {
  const wire =
    code === 'too-many-auth-failures'
      ? DISCONNECT_REASON.NO_MORE_AUTH_METHODS_AVAILABLE!
      : code === 'protocol-error'
        ? DISCONNECT_REASON.PROTOCOL_ERROR!
        : DISCONNECT_REASON.BY_APPLICATION!;
  const proto = (conn as unknown as { _protocol: { disconnect(code: number, description: string): void } })._protocol;
  try {
    proto.disconnect(wire, description);
  } catch {
    // The socket may already be gone; the caller destroys it either way.
  }
  connectionSocket(conn).end();
}
