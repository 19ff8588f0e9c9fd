/**
 * `holdfast sessions [--config FILE | --admin HOST:PORT [--token-file FILE]] [--json]`: the live
 * sessions, from the admin listener's /sessions (every worker's), as a table or as JSON. The bearer
 * token (admin.tokenFile) comes from the config, or from --token-file.
 */
import fs from 'node:fs';
import type { SessionInfo, LegInfo } from '../session/describe.js';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { LoadedConfig } from '../config/load.js';

export async function runSessions(opts: { admin: string | undefined; tokenFile: string | undefined; json: boolean; close?: string | undefined; why?: string | undefined; load: () => LoadedConfig | null }): Promise<number> {
  if (opts.why !== undefined && opts.close === undefined) {
    process.stderr.write('holdfast: --why goes with --close ID\n');
    return EXIT_USAGE;
  }
  if (opts.close !== undefined && !/^[0-9a-f]{8}$/.test(opts.close)) {
    process.stderr.write(`holdfast: --close ${JSON.stringify(opts.close)} is not a session id (8 hex digits: the ID column of holdfast sessions)\n`);
    return EXIT_USAGE;
  }
  let at: string;
  let token: string | undefined;
  if (opts.tokenFile !== undefined && opts.admin === undefined) {
    process.stderr.write('holdfast: --token-file goes with --admin HOST:PORT (with --config, admin.tokenFile is read from the config)\n');
    return EXIT_USAGE;
  }
  if (opts.tokenFile !== undefined) {
    try {
      token = fs.readFileSync(opts.tokenFile, 'utf8').trim();
    } catch (err) {
      process.stderr.write(`holdfast: cannot read --token-file ${opts.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
      return EXIT_USAGE;
    }
  }
  if (opts.admin !== undefined) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(opts.admin)) {
      process.stderr.write(`holdfast: --admin ${JSON.stringify(opts.admin)} is not HOST:PORT\n`);
      return EXIT_USAGE;
    }
    at = opts.admin;
  } else {
    const loaded = opts.load();
    if (!loaded) return EXIT_CONFIG;
    const a = loaded.config.admin;
    if (!a) {
      process.stderr.write(`holdfast: ${loaded.config.source} has no admin listener; add  admin: { address: 127.0.0.1, port: 9750 }  and restart holdfast, or pass --admin HOST:PORT\n`);
      return EXIT_CONFIG;
    }
    token = a.auth?.token;
    const host = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '[::1]' : a.address.includes(':') ? `[${a.address}]` : a.address;
    at = `${host}:${a.port}`;
  }
  if (opts.close !== undefined) return closeOne(at, token, opts.close, opts.why);
  let sessions: SessionInfo[];
  try {
    const res = await fetch(`http://${at}/sessions`, { signal: AbortSignal.timeout(10_000), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
    if (res.status === 401) {
      const why = token
        ? `the token sent was refused (${opts.tokenFile ?? 'admin.tokenFile'} differs from the one the running holdfast read at start)`
        : 'run with --config (admin.tokenFile) or --admin HOST:PORT --token-file FILE';
      process.stderr.write(`holdfast: http://${at}/sessions wants the admin token: ${why}\n`);
      return EXIT_FAILURE;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).trim()}`);
    sessions = (await res.json()) as SessionInfo[];
  } catch (err) {
    const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    process.stderr.write(`holdfast: cannot read sessions from http://${at}/sessions: ${why} (is holdfast running with admin: configured?)\n`);
    return EXIT_FAILURE;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(sessions, null, 2)}\n` : table(sessions));
  return EXIT_OK;
}

/** POST /sessions/ID/close: the user's ssh prints `why`. */
async function closeOne(at: string, token: string | undefined, id: string, why: string | undefined): Promise<number> {
  const url = `http://${at}/sessions/${id}/close`;
  try {
    const res = await fetch(url, {
      method: 'POST',
      signal: AbortSignal.timeout(10_000),
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(why !== undefined ? { why } : {}),
    });
    const text = (await res.text()).trim();
    if (res.ok) {
      process.stdout.write(`closed session ${id}${why ? ` (the user sees: ${why})` : ''}\n`);
      return EXIT_OK;
    }
    const said = res.status === 404 ? `no session ${id} is open (holdfast sessions lists them)` : res.status === 401 ? 'the admin token was refused or not sent (run with --config, or --admin HOST:PORT --token-file FILE)' : text;
    process.stderr.write(`holdfast: cannot close session ${id}: ${said}\n`);
    return EXIT_FAILURE;
  } catch (err) {
    const msg = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    process.stderr.write(`holdfast: cannot reach ${url}: ${msg} (is holdfast running with admin: configured?)\n`);
    return EXIT_FAILURE;
  }
}

function rtt(l: LegInfo | null): string {
  if (!l) return '-';
  const f = (v: number | null) => (v === null ? '-' : `${v}`);
  return `${f(l.lastRttMs)}/${f(l.srttMs)} ms ${l.probesAnswered}/${l.probesSent}`;
}

function bytes(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)}M` : n >= 1024 ? `${(n / 1024).toFixed(1)}K` : `${n}`;
}

function table(sessions: SessionInfo[]): string {
  const head = ['ID', 'USER', 'SOURCE', 'MODE', 'ROUTES', 'DESTINATIONS', 'AGE', 'UP', 'DOWN', 'CLIENT RTT last/srtt, answered/sent', 'UPSTREAM'];
  const rows = sessions.map((s) => [
    s.id,
    s.user ?? '(authenticating)',
    s.src,
    s.mode ?? '-',
    s.routes.join(',') || '-',
    s.destinations.join(',') || '-',
    `${s.ageS}s`,
    bytes(s.bytesUp),
    bytes(s.bytesDown),
    s.detachedS !== undefined ? `detached ${s.detachedS}s` : rtt(s.client),
    !s.upstream ? '-' : 'layer' in s.upstream ? `${s.upstream.layer}, ${s.upstream.channels} channel(s)` : `ssh ${s.upstream.state} ${rtt(s.upstream)}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n${sessions.length} session(s)\n`;
}
