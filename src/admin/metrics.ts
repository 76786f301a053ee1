// Prometheus metrics, in a registry of our own (never the process-global default). Node and process
// metrics keep their standard, unprefixed names (`process_cpu_seconds_total`,
// `nodejs_heap_size_used_bytes`…) so that stock dashboards work; ours are `clinimesh_*`. Gauges that
// describe state (sidecars by sync state, certificate expiry, Consul staleness) are computed at
// scrape time from their owners, never kept in step by hand.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConsulServiceStatus } from '../discovery/consul.ts';
import type { SidecarStatus, StatusEvents } from '../xds/status.ts';
import { shortName, type TypeUrl } from '../xds/resources/type-urls.ts';
import type { Result } from '../errors.ts';

export type SyncState = 'synced' | 'stale' | 'nacked';
export const SYNC_STATES: readonly SyncState[] = ['synced', 'stale', 'nacked'];

export type CertificateKind = 'root' | 'intermediate' | 'serving';
export interface CertificateExpiry {
  readonly kind: CertificateKind;
  readonly notAfter: Date;
}

/** How an apply or delete ended: committed (or unchanged), refused with problems, or failed by a bug. */
export type ApplyResult = 'ok' | 'rejected' | 'error';

/**
 * One sidecar's sync state. A type is in sync when nothing is in flight and it ACKed the version
 * last sent; it is NACKed when the answer to the last push was a NACK (nothing in flight since, and
 * what it runs is not what was sent). Any NACKed type makes the sidecar `nacked`; otherwise any
 * type out of sync (or no exchange yet) makes it `stale`.
 */
export function sidecarSyncState(s: SidecarStatus): SyncState {
  if (s.types.size === 0) return 'stale';
  let synced = true;
  for (const t of s.types.values()) {
    const current =
      t.pendingNonce === undefined && (t.sentVersion === undefined || t.ackedVersion === t.sentVersion);
    if (current) continue;
    if (t.lastNack && t.pendingNonce === undefined) return 'nacked';
    synced = false;
  }
  return synced ? 'synced' : 'stale';
}

export class Metrics {
  readonly registry = new Registry();
  readonly connected = new Gauge({
    name: 'clinimesh_xds_connected_sidecars',
    help: 'Sidecars with an open xDS stream or recent poll',
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'clinimesh_xds_pushes_total',
    help: 'Discovery responses sent',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly pushBytes = new Counter({
    name: 'clinimesh_xds_push_bytes_total',
    help: 'Bytes of discovery responses sent',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly nacks = new Counter({
    name: 'clinimesh_xds_nacks_total',
    help: 'Responses rejected by sidecars',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly pushLatency = new Histogram({
    name: 'clinimesh_xds_push_latency_seconds',
    help: 'From a new snapshot version to the sidecar ACKing it',
    labelNames: ['type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly revision = new Gauge({
    name: 'clinimesh_state_revision',
    help: 'Revision of the desired state in force',
    registers: [this.registry],
  });
  readonly applies = new Counter({
    name: 'clinimesh_applies_total',
    help: 'Apply and delete requests by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly applyDuration = new Histogram({
    name: 'clinimesh_apply_duration_seconds',
    help: 'Time to validate, plan and publish an apply or delete (dry runs excluded), by result',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  observeApply(result: ApplyResult, seconds: number): void {
    this.applyDuration.observe({ result }, seconds);
  }

  /** 1 on the replica that holds the leader lock (singleton duties run there), else 0. */
  watchLeadership(isLeader: () => boolean): void {
    new Gauge({
      name: 'clinimesh_leader',
      help: 'Whether this replica is the elected leader (1) or not (0); a single replica always leads',
      registers: [this.registry],
      collect() {
        this.set(isLeader() ? 1 : 0);
      },
    });
  }

  /** Sidecars by sync state, read from the status registry at scrape time. */
  watchSidecars(all: () => readonly SidecarStatus[]): void {
    new Gauge({
      name: 'clinimesh_sidecars',
      help: 'Connected sidecars by sync state: synced (every type ACKed at the version sent), nacked (a type rejected its last push), stale (otherwise)',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = new Map<SyncState, number>(SYNC_STATES.map((s) => [s, 0]));
        for (const s of all()) {
          const state = sidecarSyncState(s);
          counts.set(state, counts.get(state)! + 1);
        }
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }

  /** The soonest expiry per kind of certificate the control plane holds, read at scrape time. */
  watchCertificates(expiries: () => readonly CertificateExpiry[]): void {
    new Gauge({
      name: 'clinimesh_certificate_expiry_timestamp_seconds',
      help: 'Soonest notAfter (Unix seconds) of the certificates the control plane holds, by kind (workload certificates: the node agents report their own)',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        this.reset();
        const soonest = new Map<CertificateKind, number>();
        for (const { kind, notAfter } of expiries()) {
          const t = notAfter.getTime() / 1000;
          soonest.set(kind, Math.min(t, soonest.get(kind) ?? Infinity));
        }
        for (const [kind, t] of soonest) this.set({ kind }, t);
      },
    });
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

/** What `timeApplies` wraps: the control plane's apply and delete (a dry run is a `true` argument). */
export interface Applier<A extends unknown[], D extends unknown[], T> {
  apply(...args: A): Promise<Result<T>>;
  delete(...args: D): Promise<Result<T>>;
}

/**
 * Times every apply and delete through `target` (the admin API, start-up manifests and trust-domain
 * migrations alike) into clinimesh_apply_duration_seconds, without the callers knowing. Dry runs
 * (a `true` argument) are not observed: they publish nothing.
 */
export function timeApplies<A extends unknown[], D extends unknown[], T>(
  target: Applier<A, D, T>,
  metrics: Metrics,
): void {
  const timed =
    <Args extends unknown[]>(fn: (...args: Args) => Promise<Result<T>>) =>
    async (...args: Args): Promise<Result<T>> => {
      if (args.includes(true)) return fn(...args);
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const result = await fn(...args);
        metrics.observeApply(result.ok ? 'ok' : 'rejected', seconds());
        return result;
      } catch (e) {
        metrics.observeApply('error', seconds());
        throw e;
      }
    };
  target.apply = timed(target.apply.bind(target));
  target.delete = timed(target.delete.bind(target));
}
