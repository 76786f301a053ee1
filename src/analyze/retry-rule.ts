// CM0008: a retry policy that could send a clinical write twice. No manifest carries retry settings
// yet (routes retry only failures before the request left the sidecar; see xds/generate/routes.ts):
// this rule is written against the shape the TrafficPolicy kind of issue #9 is to have, so the kind
// only has to list where its policies write `retries` (RetrySite) to be checked.
import { fieldAt } from '../manifest/field-positions.ts';
import { HTTP_METHODS } from '../manifest/schema-access-policy.ts';
import type { Origin } from '../manifest/types.ts';
import { SAFE_RETRY_ON } from '../xds/generate/route-action.ts';
import { finding, locate, type Finding } from './finding.ts';

export interface RetrySettings {
  readonly attempts: number;
  /** Envoy `retry_on` conditions: `connect-failure`, `reset`, `5xx`, `gateway-error`, gRPC `unavailable`… */
  readonly retryOn: readonly string[];
  /** The HTTP methods retried; absent: every method (gRPC calls are all POSTs). */
  readonly methods?: readonly string[];
  /** When set, a non-idempotent request is retried only if it carries this header (`Idempotency-Key`). */
  readonly idempotencyKeyHeader?: string;
}

/** One `retries` block of a manifest: where it is written, and what it says. */
export interface RetrySite {
  readonly resource: string;
  readonly origin: Origin;
  /** Field path of the block, e.g. `spec.routes[0].retries`. */
  readonly field: string;
  readonly retries: RetrySettings;
}

/** Conditions met only when the request never reached the upstream: retrying them repeats nothing. */
export const NEVER_SENT_CONDITIONS: readonly string[] = SAFE_RETRY_ON.split(',');
/** Methods that HTTP defines as idempotent: executing one twice leaves the same state as once. */
export const IDEMPOTENT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];

function unsafeRetry(site: RetrySite): Finding[] {
  const { attempts, retryOn, methods, idempotencyKeyHeader } = site.retries;
  const afterSent = retryOn.filter((c) => !NEVER_SENT_CONDITIONS.includes(c));
  const writes = (methods ?? HTTP_METHODS).filter((m) => !IDEMPOTENT_METHODS.includes(m));
  if (attempts <= 0 || afterSent.length === 0 || writes.length === 0 || idempotencyKeyHeader) return [];
  const field = fieldAt(site.origin.fieldPos, `${site.field}.retryOn`) ? `${site.field}.retryOn` : site.field;
  return [
    finding(
      'CM0008',
      locate(site.origin, field),
      site.resource,
      `retries ${writes.join(', ')} requests on ${afterSent.join(', ')}, after the upstream may have executed them: a clinical write could be repeated`,
      `retry only on ${NEVER_SENT_CONDITIONS.join(', ')}; or limit methods to ${IDEMPOTENT_METHODS.join(', ')}; or set idempotencyKeyHeader so only writes carrying that key are retried`,
    ),
  ];
}

export function unsafeRetryFindings(sites: readonly RetrySite[]): Finding[] {
  return sites.flatMap(unsafeRetry);
}
