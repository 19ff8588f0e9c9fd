/**
 * The admin HTTP listener, in the primary (it sees every worker, and outlives upgrades): GET /metrics
 * (every worker's registry aggregated by prom-client's AggregatorRegistry over the cluster IPC
 * channel), GET /healthz (200 while accepting, 503 while starting or shutting down) and GET /sessions
 * (JSON, each worker's live sessions). Off unless `admin:` is configured; it is never a destination
 * of holdfast's own forwarding (src/routing/guard.ts isAdmin). With admin.tokenFile, /metrics and
 * /sessions need `Authorization: Bearer <token>` (what Prometheus sends with `authorization:
 * credentials_file:`); /healthz stays open for a balancer's health checks.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import type { Events } from '../events.js';
import type { Metrics } from '../metrics/collector.js';
import type { SessionInfo } from '../session/describe.js';
import type { AdminListener } from '../config/resolve-admin.js';
import { KeyedCount } from '../keyed-count.js';

/** In a worker: answer the primary's metric requests from this worker's registry. */
export function serveMetricsToPrimary(m: Metrics): void {
  AggregatorRegistry.setRegistries([m.registry]);
  // prom-client installs the worker's IPC listener when an AggregatorRegistry is constructed.
  new AggregatorRegistry();
}

export interface AdminSources {
  metrics(): Promise<string>;
  sessions(): Promise<SessionInfo[]>;
  health(): { readonly ok: boolean; readonly state: string };
  /** Ends session `id` wherever it is; false: no worker holds it. */
  close(id: string, why: string): Promise<boolean>;
}

/** A close request's body ({"why": "..."}) is at most this long; `why` is cut to WHY_MAX characters. */
const BODY_MAX = 2048;
const WHY_MAX = 200;

/** A scrape or a `holdfast sessions` call never waits longer than this for the workers. */
export const ADMIN_TIMEOUT_MS = 5000;

/**
 * Idle sockets must not make /healthz unreachable (a balancer that cannot read it takes holdfast out
 * of service): a connection that has not sent a whole request head within ADMIN_HEADER_TIMEOUT_MS
 * is closed (checked every ADMIN_CHECK_MS: Node's default checks every 30 s), one source holds at most
 * ADMIN_PER_SOURCE connections, and the listener as a whole ADMIN_MAX_CONNECTIONS.
 */
export const ADMIN_HEADER_TIMEOUT_MS = 2000;
const ADMIN_CHECK_MS = 500;
export const ADMIN_PER_SOURCE = 16;
const ADMIN_MAX_CONNECTIONS = 1024;

export function startAdmin(at: AdminListener, src: AdminSources, events: Events): Promise<http.Server | undefined> {
  const authorized = bearerCheck(at.auth?.token);
  const server = http.createServer(
    { connectionsCheckingInterval: ADMIN_CHECK_MS, headersTimeout: ADMIN_HEADER_TIMEOUT_MS, requestTimeout: ADMIN_TIMEOUT_MS * 2, keepAliveTimeout: ADMIN_HEADER_TIMEOUT_MS },
    (req, res) => void answer(req, res, { src, authorized, canWrite: at.auth !== undefined, events }),
  );
  server.maxConnections = ADMIN_MAX_CONNECTIONS;
  const perSource = new KeyedCount();
  server.on('connection', (sock: import('node:net').Socket) => {
    sock.on('error', () => {}); // http's own clientError handling closes it; a reset must not throw
    const ip = sock.remoteAddress ?? '';
    if (perSource.held(ip) >= ADMIN_PER_SOURCE) return void sock.destroy();
    sock.once('close', perSource.take(ip));
  });
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      events.emit('admin-failed', { error: `cannot listen on ${at.address}:${at.port}: ${err.code ?? err.message}`, effect: 'no /metrics, /healthz or /sessions; SSH is served as usual' });
      resolve(undefined);
    });
    server.listen({ host: at.address, port: at.port }, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => events.emit('admin-failed', { error: String(err), effect: 'the admin listener failed' }));
      const a = server.address() as import('node:net').AddressInfo;
      events.emit('admin-listening', { address: a.address, port: a.port });
      resolve(server);
    });
  });
}

/**
 * With admin.tokenFile, whether a request carries `Authorization: Bearer <token>` (compared as SHA-256
 * digests in constant time); without one, every request is.
 */
export function bearerCheck(token: string | undefined): (req: http.IncomingMessage) => boolean {
  if (token === undefined) return () => true;
  const want = crypto.createHash('sha256').update(`Bearer ${token}`).digest();
  return (req) => crypto.timingSafeEqual(crypto.createHash('sha256').update(req.headers.authorization ?? '').digest(), want);
}

interface Ctx {
  readonly src: AdminSources;
  readonly authorized: (req: http.IncomingMessage) => boolean;
  /** Only a listener with a token may change anything. */
  readonly canWrite: boolean;
  readonly events: Events;
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx): Promise<void> {
  const { src, authorized } = ctx;
  const path = (req.url ?? '/').split('?')[0]!;
  const close = /^\/sessions\/([0-9a-f]{8})\/close$/.exec(path);
  if (req.method === 'POST' && close) return closeSession(req, res, close[1]!, ctx);
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET (and POST /sessions/ID/close)\n');
  if ((path === '/metrics' || path === '/sessions') && !authorized(req)) {
    res.setHeader('www-authenticate', 'Bearer realm="holdfast"');
    return send(res, 401, 'text/plain', 'unauthorized: send Authorization: Bearer <the token in admin.tokenFile>\n');
  }
  try {
    if (path === '/metrics') return send(res, 200, AggregatorRegistry.PROMETHEUS_CONTENT_TYPE, await src.metrics());
    if (path === '/healthz') {
      const h = src.health();
      return send(res, h.ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: h.state })}\n`);
    }
    if (path === '/sessions') return send(res, 200, 'application/json', `${JSON.stringify(await src.sessions())}\n`);
    return send(res, 404, 'text/plain', 'not found: try /metrics, /healthz or /sessions\n');
  } catch (err) {
    return send(res, 500, 'text/plain', `${err instanceof Error ? err.message : String(err)}\n`);
  }
}

/** POST /sessions/ID/close, body {"why": "..."}: the bearer token required, and a token configured. */
async function closeSession(req: http.IncomingMessage, res: http.ServerResponse, id: string, ctx: Ctx): Promise<void> {
  if (!ctx.canWrite) return send(res, 403, 'text/plain', 'ending sessions needs admin.tokenFile: without a token the admin listener is read-only\n');
  if (!ctx.authorized(req)) {
    res.setHeader('www-authenticate', 'Bearer realm="holdfast"');
    return send(res, 401, 'text/plain', 'unauthorized: send Authorization: Bearer <the token in admin.tokenFile>\n');
  }
  let body = '';
  try {
    for await (const chunk of req) {
      body += chunk;
      if (body.length > BODY_MAX) return send(res, 413, 'text/plain', `the body is at most ${BODY_MAX} bytes: {"why": "..."}\n`);
    }
  } catch {
    return;
  }
  let why = 'ended by an administrator';
  if (body.trim()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return send(res, 400, 'text/plain', 'the body must be JSON: {"why": "..."}\n');
    }
    const w = (parsed as { why?: unknown } | null)?.why;
    if (w !== undefined && typeof w !== 'string') return send(res, 400, 'text/plain', '"why" must be a string\n');
    // What the user's ssh prints: printable text only, bounded.
    if (w) why = w.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, WHY_MAX);
  }
  try {
    const found = await ctx.src.close(id, why);
    ctx.events.emit('admin-session-close', { session: id, why, found, src: `${req.socket.remoteAddress}:${req.socket.remotePort}` });
    if (!found) return send(res, 404, 'application/json', `${JSON.stringify({ closed: false, error: `no session ${id}: see holdfast sessions` })}\n`);
    return send(res, 200, 'application/json', `${JSON.stringify({ closed: true, session: id, why })}\n`);
  } catch (err) {
    return send(res, 500, 'text/plain', `${err instanceof Error ? err.message : String(err)}\n`);
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
