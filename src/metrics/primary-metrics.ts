/**
 * What the primary counts itself (src/metrics/declarations.ts, scope `primary`): reloads, upgrades
 * and worker restarts, which no worker sees whole. Its text is appended to the workers' aggregated
 * metrics at /metrics (the names are its own, so the exposition stays valid).
 */
import { Counter, Registry } from 'prom-client';
import type { Events } from '../events.js';
import { METRICS, type MetricName, type MetricSpec } from './declarations.js';

export class PrimaryMetrics {
  readonly registry = new Registry();
  private readonly c = new Map<MetricName, Counter<string>>();

  constructor(events: Events) {
    for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
      if (spec.scope !== 'primary') continue;
      const counter = new Counter({ name, help: spec.help, labelNames: [...spec.labels], registers: [this.registry] });
      for (const labels of spec.initial ?? []) counter.inc(labels, 0);
      this.c.set(name, counter);
    }
    events.subscribe((name) => {
      if (name === 'worker-lost') this.c.get('holdfast_worker_restarts_total')!.inc();
      else if (name === 'upgrade-complete') this.c.get('holdfast_upgrades_total')!.inc({ result: 'complete' });
      else if (name === 'upgrade-failed') this.c.get('holdfast_upgrades_total')!.inc({ result: 'failed' });
      else if (name === 'primary-reloaded') this.reload('applied');
    });
  }

  reload(result: 'applied' | 'failed'): void {
    this.c.get('holdfast_reloads_total')!.inc({ result });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
