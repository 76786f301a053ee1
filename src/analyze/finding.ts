// What `clinimesh analyze` reports: findings with a stable rule code, a severity, where the cause is
// written (file:line:col), the resource at fault, what is wrong and how to fix it.
import type { SourcePos } from '../errors.ts';
import { fieldPosition } from '../manifest/problem-at.ts';
import type { Origin } from '../manifest/types.ts';

export const SEVERITIES = ['error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Every rule, by its stable code. Codes are never reused: a retired rule keeps its number. */
export const RULES = {
  CM0001: { severity: 'error', title: 'the manifests do not validate (what `clinimesh validate` reports)' },
  CM0002: { severity: 'error', title: 'a service handling PHI has no AccessPolicy' },
  CM0003: { severity: 'error', title: 'a service handling PHI is in a mesh with PERMISSIVE mTLS' },
  CM0004: { severity: 'error', title: 'a service handling PHI is in a mesh with auditing off' },
  CM0005: { severity: 'warning', title: 'the mesh allows by default while a service handles PHI' },
  CM0006: { severity: 'error', title: 'an AccessPolicy names a service that does not exist' },
  CM0007: { severity: 'warning', title: "an upstream the destination's policies do not let the caller call" },
  CM0008: { severity: 'error', title: 'a retry policy could repeat a non-idempotent write' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type RuleCode = keyof typeof RULES;

/** Where a finding points: a position when the field's is known, else at least the file. */
export type Location = { readonly pos: SourcePos } | { readonly file: string } | Record<string, never>;

export interface Finding {
  readonly code: RuleCode;
  readonly severity: Severity;
  readonly location: Location;
  /** `Service clinical/his`, when the finding concerns one manifest. */
  readonly resource?: string;
  readonly message: string;
  readonly fix: string;
}

/** The field's position if it was read from YAML, else the document's, else its file. */
export function locate(origin: Origin, field: string): Location {
  const pos = fieldPosition(origin, field);
  return pos ? { pos } : { file: origin.file };
}

export function finding(
  code: RuleCode,
  location: Location,
  resource: string | undefined,
  message: string,
  fix: string,
): Finding {
  return { code, severity: RULES[code].severity, location, ...(resource && { resource }), message, fix };
}

const RANK: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };

/** Whether `severity` is `threshold` or worse (`--fail-on warning` fails on errors too). */
export function atLeast(severity: Severity, threshold: Severity): boolean {
  return RANK[severity] <= RANK[threshold];
}

export function fileOf(l: Location): string | undefined {
  return 'pos' in l ? l.pos.file : 'file' in l ? l.file : undefined;
}

/** By file, then line and column, then code: the order an editor walks a file in. */
export function byLocation(a: Finding, b: Finding): number {
  const pa = 'pos' in a.location ? a.location.pos : undefined;
  const pb = 'pos' in b.location ? b.location.pos : undefined;
  const fa = fileOf(a.location) ?? '';
  const fb = fileOf(b.location) ?? '';
  return (
    (fa < fb ? -1 : fa > fb ? 1 : 0) ||
    (pa?.line ?? 0) - (pb?.line ?? 0) ||
    (pa?.col ?? 0) - (pb?.col ?? 0) ||
    (a.code < b.code ? -1 : a.code > b.code ? 1 : 0)
  );
}
