// The analysis: validation problems (as CM0001) plus every clinical rule, over one desired state,
// whether read from files or fetched from a running control plane. Pure: no I/O.
import type { Problem } from '../errors.ts';
import { checkManifestSet } from '../manifest/check-set.ts';
import type { Manifest } from '../manifest/types.ts';
import { analysisContext, type AnalysisContext } from './context.ts';
import { byLocation, finding, type Finding, type Location } from './finding.ts';
import { phiFindings } from './phi-rules.ts';
import { deniedUpstreamFindings, policyReferenceFindings } from './policy-rules.ts';
import { unsafeRetryFindings, type RetrySite } from './retry-rule.ts';

type Rule = (ctx: AnalysisContext) => Finding[];

const MANIFEST_RULES: readonly Rule[] = [phiFindings, policyReferenceFindings, deniedUpstreamFindings];

/** A validation problem as a finding: an error, at the problem's own position. */
export function invalidManifest(p: Problem): Finding {
  const location: Location = p.pos ? { pos: p.pos } : {};
  const field = p.field ? `${p.field}: ` : '';
  return finding(
    'CM0001',
    location,
    p.resource,
    `${field}${p.message} [${p.code}]`,
    'correct the manifest (`clinimesh validate` reports the same problem); the rules run once all manifests validate',
  );
}

const key = (l: Location): string | undefined =>
  'pos' in l ? `${l.pos.file}:${l.pos.line}:${l.pos.col}` : undefined;

export interface AnalysisInput {
  readonly manifests: readonly Manifest[];
  /** Retry blocks to check (CM0008); no manifest kind has any until TrafficPolicy (issue #9) lands. */
  readonly retrySites?: readonly RetrySite[];
}

/**
 * Every finding for a set of individually valid manifests, sorted by place. A set problem that a
 * rule also reports at the same place (an AccessPolicy naming no service) is reported by the rule,
 * which says more, and not twice.
 */
export function analyzeManifests(input: AnalysisInput): Finding[] {
  const ctx = analysisContext(input.manifests);
  const found = [
    ...MANIFEST_RULES.flatMap((rule) => rule(ctx)),
    ...unsafeRetryFindings(input.retrySites ?? []),
  ];
  const placed = new Set(found.map((f) => key(f.location)).filter((k) => k !== undefined));
  const invalid = checkManifestSet(input.manifests)
    .map(invalidManifest)
    .filter((f) => !placed.has(key(f.location) ?? ''));
  return [...invalid, ...found].sort(byLocation);
}

/** When documents do not validate, there is no state to judge: their problems are the findings. */
export function analyzeInvalid(problems: readonly Problem[]): Finding[] {
  return problems.map(invalidManifest).sort(byLocation);
}
