// `clinimesh analyze`: clinical rules over a desired state, as findings with codes and fixes.
export { analyzeInvalid, analyzeManifests, invalidManifest, type AnalysisInput } from './analyze.ts';
export { atLeast, RULES, SEVERITIES, type Finding, type RuleCode, type Severity } from './finding.ts';
export { countBySeverity, findingJson, formatFinding, summaryLine, type FindingJson } from './format.ts';
export { PHI_LABEL } from './context.ts';
export { unsafeRetryFindings, type RetrySettings, type RetrySite } from './retry-rule.ts';
