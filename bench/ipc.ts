// Messages between the benchmark (parent, which runs the control plane) and its sidecar-simulator
// workers. Receipts are only collected between measurements, so IPC never runs inside a timed window
// on the control plane's process.
import type { SidecarSpec } from './mesh-gen.ts';

/**
 * Endpoint ports at or above this are markers: sequential change k moves an endpoint to port
 * MARKER_BASE + k, so a simulator can tell which change an EDS response carries from its content.
 */
export const MARKER_BASE = 30000;

/** Mutual TLS to the xDS port: the CA bundle, and a workload certificate per service (by name). */
export interface XdsTlsMaterial {
  readonly ca: string;
  readonly byService: Readonly<Record<string, { readonly cert: string; readonly key: string }>>;
}

export type ToWorker =
  | {
      readonly kind: 'start';
      readonly target: string;
      readonly sidecars: readonly SidecarSpec[];
      readonly streamsPerChannel: number;
      /** Streams are opened evenly over this many ms (0: all at once). */
      readonly rampMs: number;
      readonly tls?: XdsTlsMaterial;
    }
  | {
      /** Build each service's TLS credential before anything is timed (a sidecar has its certificate before it connects). */
      readonly kind: 'prepare';
      readonly sidecars: readonly SidecarSpec[];
      readonly tls?: XdsTlsMaterial;
    }
  | { readonly kind: 'collect' }
  | { readonly kind: 'stall' }
  | { readonly kind: 'stop' };

/** [sidecar node id, marker, wall-clock ms when the EDS response carrying it arrived]. */
export type Receipt = readonly [nodeId: string, marker: number, at: number];

export type FromWorker =
  | { readonly kind: 'opened'; readonly streams: number }
  | {
      readonly kind: 'collected';
      readonly receipts: readonly Receipt[];
      /** Streams that failed and were opened again since the last collect, by reason. */
      readonly reconnects: Readonly<Record<string, number>>;
      readonly responses: number;
      readonly cpuMs: number;
      readonly rssBytes: number;
    }
  | { readonly kind: 'failed'; readonly message: string };

/** IPC payloads are `unknown` at the edge; this is the one check before they are trusted. */
export function isFromWorker(m: unknown): m is FromWorker {
  return (
    typeof m === 'object' &&
    m !== null &&
    'kind' in m &&
    ['opened', 'collected', 'failed'].includes(String(m.kind))
  );
}

export function isToWorker(m: unknown): m is ToWorker {
  return (
    typeof m === 'object' &&
    m !== null &&
    'kind' in m &&
    ['start', 'prepare', 'collect', 'stall', 'stop'].includes(String(m.kind))
  );
}
