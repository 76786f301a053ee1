// Prometheus metrics, in a registry of our own (never the process-global default).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConsulServiceStatus } from '../discovery/consul.ts';
import type { StatusEvents } from '../xds/status.ts';
import { shortName, type TypeUrl } from '../xds/resources/type-urls.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly connected = new Gauge({ name: 'clinimesh_xds_connected_sidecars', help: 'Sidecars with an open xDS stream or recent poll', registers: [this.registry] });
  readonly pushes = new Counter({ name: 'clinimesh_xds_pushes_total', help: 'Discovery responses sent', labelNames: ['type'], registers: [this.registry] });
  readonly pushBytes = new Counter({ name: 'clinimesh_xds_push_bytes_total', help: 'Bytes of discovery responses sent', labelNames: ['type'], registers: [this.registry] });
  readonly nacks = new Counter({ name: 'clinimesh_xds_nacks_total', help: 'Responses rejected by sidecars', labelNames: ['type'], registers: [this.registry] });
  readonly pushLatency = new Histogram({
    name: 'clinimesh_xds_push_latency_seconds',
    help: 'From a new snapshot version to the sidecar ACKing it',
    labelNames: ['type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly revision = new Gauge({ name: 'clinimesh_state_revision', help: 'Revision of the desired state in force', registers: [this.registry] });
  readonly applies = new Counter({ name: 'clinimesh_applies_total', help: 'Apply and delete requests by result', labelNames: ['result'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'clinimesh_' });
  }

  /** Consul sync health per service, read at scrape time. */
  watchConsul(status: () => readonly ConsulServiceStatus[]): void {
    new Gauge({
      name: 'clinimesh_consul_staleness_seconds',
      help: 'Age of the last good Consul answer while a watch is failing (0 when in sync)',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of status()) this.set({ service: s.service }, s.stalenessMs / 1000);
      },
    });
    new Gauge({
      name: 'clinimesh_consul_consecutive_failures',
      help: 'Failed Consul queries in a row per watched service',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of status()) this.set({ service: s.service }, s.consecutiveFailures);
      },
    });
  }

  statusEvents(): StatusEvents {
    const t = (u: TypeUrl) => shortName(u);
    return {
      onPush: (u, bytes) => {
        this.pushes.inc({ type: t(u) });
        this.pushBytes.inc({ type: t(u) }, bytes);
      },
      onAck: (u, ms) => this.pushLatency.observe({ type: t(u) }, ms / 1000),
      onNack: (u) => this.nacks.inc({ type: t(u) }),
      onConnectionChange: (n) => this.connected.set(n),
    };
  }
}
