// Findings as text lines (`file:line:col: severity CODE resource: message (fix: …)`) and as JSON.
import { fileOf, SEVERITIES, type Finding, type Severity } from './finding.ts';

function place(f: Finding): string {
  const l = f.location;
  return 'pos' in l ? `${l.pos.file}:${l.pos.line}:${l.pos.col}` : (fileOf(l) ?? '-');
}

export function formatFinding(f: Finding): string {
  const resource = f.resource ? ` ${f.resource}` : '';
  return `${place(f)}: ${f.severity} ${f.code}${resource}: ${f.message} (fix: ${f.fix})`;
}

export type SeverityCounts = Record<Severity, number>;

export function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const counts: SeverityCounts = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity] += 1;
  return counts;
}

/** `2 errors, 1 warning` (only the severities present), or `no findings`. */
export function summaryLine(findings: readonly Finding[]): string {
  const counts = countBySeverity(findings);
  const parts = SEVERITIES.filter((s) => counts[s] > 0).map(
    (s) => `${counts[s]} ${s}${counts[s] === 1 ? '' : 's'}`,
  );
  return parts.length ? parts.join(', ') : 'no findings';
}

export interface FindingJson {
  readonly code: string;
  readonly severity: Severity;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly resource?: string;
  readonly message: string;
  readonly fix: string;
}

export function findingJson(f: Finding): FindingJson {
  const l = f.location;
  const file = fileOf(l);
  return {
    code: f.code,
    severity: f.severity,
    ...(file !== undefined && { file }),
    ...('pos' in l && { line: l.pos.line, col: l.pos.col }),
    ...(f.resource !== undefined && { resource: f.resource }),
    message: f.message,
    fix: f.fix,
  };
}
