import type { SessionInfo } from '../session/describe.js';
import type { ResumableEntry } from './registry.js';

/** A detached resumable session as /sessions and `holdfast sessions` show it (never its secret). */
export function describeDetached(e: ResumableEntry): SessionInfo {
  return {
    id: e.id,
    user: e.user,
    src: e.src,
    mode: 'jump',
    routes: [e.route.name],
    destinations: [e.dst],
    ageS: Math.round((Date.now() - e.leg.openedAt) / 1000),
    channels: 1,
    bytesUp: e.leg.bytesUp,
    bytesDown: e.leg.bytesDown,
    client: null,
    upstream: { layer: 'tcp', channels: 1 },
    detachedS: Math.round((performance.now() - (e.leg.detachedAt ?? performance.now())) / 1000),
  };
}
