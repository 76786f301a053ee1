// SPIFFE IDs for workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service>, with the character
// rules of the SPIFFE ID specification (§2.1 trust domain, §2.2 path segments).
import type { Problem } from '../errors.ts';

export interface WorkloadId {
  readonly namespace: string;
  readonly service: string;
}

/** The control plane's own identity lives here; it issues that itself, never from a CSR. */
export const CONTROL_PLANE_NAMESPACE = 'clinimesh-system';

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function trustDomainProblems(trustDomain: string): Problem[] {
  if (TRUST_DOMAIN.test(trustDomain)) return [];
  return [
    {
      code: 'CA',
      field: 'trustDomain',
      message: `"${trustDomain}" is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')`,
    },
  ];
}

/**
 * The URI SANs of a certificate from its `subjectaltname` as Node prints it (`DNS:a, URI:spiffe://…`;
 * a value with special characters comes JSON-quoted).
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice('URI:'.length).replace(/^"|"$/g, ''));
}

/** The trust domain a root names in its URI SAN `spiffe://<trust-domain>` (no path), if it names one. */
export function trustDomainOfRoot(uriSans: readonly string[]): string | undefined {
  for (const uri of uriSans) {
    const m = /^spiffe:\/\/([^/]+)\/?$/.exec(uri);
    if (m) return m[1];
  }
  return undefined;
}

const validSegment = (s: string): boolean => SEGMENT.test(s) && s !== '.' && s !== '..';

/** Throws on a name no validated manifest can hold: reaching here with one is a bug upstream. */
export function spiffeId(trustDomain: string, id: WorkloadId): string {
  for (const [field, value] of [
    ['namespace', id.namespace],
    ['service', id.service],
  ] as const) {
    if (!validSegment(value)) throw new TypeError(`${field} "${value}" cannot be a SPIFFE path segment`);
  }
  return `spiffe://${trustDomain}/ns/${id.namespace}/sa/${id.service}`;
}

/** An instance name, as the last part of a node id: a DNS label. */
export const INSTANCE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The instance a certificate is bound to, from its subject as Node reads it (`getPeerCertificate()`):
 * the X.520 serialNumber attribute ("the serial number of an object"), set only by our CA. Not a second
 * URI SAN: an X.509-SVID carries exactly one URI SAN, its SPIFFE ID, and validators must reject more
 * (SPIFFE X509-SVID §2).
 */
export function boundInstance(subject: object | undefined): string | undefined {
  const value: unknown = (subject as Record<string, unknown> | undefined)?.serialNumber;
  return typeof value === 'string' && INSTANCE.test(value) ? value : undefined;
}

/** `clinical/his`: the key a workload is tracked by. */
export const workloadKey = (id: WorkloadId): string => `${id.namespace}/${id.service}`;
