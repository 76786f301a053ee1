// What the admin API needs from the rest of the control plane, and what each route is handed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ControlPlane } from '../xds/plan/control-plane.ts';
import type { Result } from '../errors.ts';
import type { SnapshotCache } from '../xds/cache/snapshot.ts';
import type { StatusRegistry } from '../xds/status.ts';
import type { History } from './history.ts';
import type { Metrics } from './metrics.ts';
import type { Principal, TokenStore } from './tokens.ts';

/** The join-token store (src/identity/join-tokens.ts), as far as the admin API uses it. */
export interface JoinTokenIssuer {
  create(req: {
    namespace: string;
    service: string;
    instance?: string;
    ttlMs?: number;
    createdBy: string;
  }): Result<{ id: string; token: string; expiresAt: string; saved: Promise<Result<void>> }>;
}

export interface AdminDeps {
  readonly controlPlane: ControlPlane;
  readonly cache: SnapshotCache;
  readonly statuses: StatusRegistry;
  readonly metrics: Metrics;
  readonly ready: () => boolean;
  /** Extra status sections (discovery sources, CA) keyed by name. */
  readonly extraStatus?: () => Record<string, unknown>;
  readonly ca?: {
    describe(): unknown;
    rotateRoot(phase: 'begin' | 'complete'): Promise<Result<unknown>>;
    /** Moves the mesh to a new SPIFFE trust domain (POST /v1/ca/trust-domain); absent: not offered. */
    migrateTrustDomain?(trustDomain: string): Promise<Result<unknown>>;
  };
  /** Operator tokens: who may call, with which role. */
  readonly tokens: TokenStore;
  /** Who changed what. */
  readonly history: History;
  readonly joinTokens?: JoinTokenIssuer;
  /** `--admin-allowed-host` values accepted in Host/Origin besides our own address and loopback names. */
  readonly allowedHosts?: readonly string[];
  /** GET /metrics without a token (`serve --metrics-public`). */
  readonly metricsPublic?: boolean;
}

/** One authenticated request, as a route sees it. */
export interface AdminCall {
  readonly deps: AdminDeps;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly principal: Principal;
}
