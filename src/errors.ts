// Errors are values: every problem names where it came from (file:line:col, field path, resource),
// and validators collect all problems instead of stopping at the first.

export type ErrorCode =
  | 'YAML_SYNTAX' // the file is not valid YAML
  | 'SCHEMA' // a field has the wrong type, is missing, or is out of range
  | 'UNKNOWN_KIND' // apiVersion/kind not recognised
  | 'DUPLICATE' // two documents or list entries with the same identity
  | 'REFERENCE' // a reference to something that does not exist
  | 'CONFLICT' // two valid things that cannot both hold (e.g. a port bound twice)
  | 'PGV' // a generated Envoy resource breaks a protoc-gen-validate rule
  | 'CONSISTENCY' // a snapshot references a resource it does not contain
  | 'IO' // a file could not be read or written
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'CONSUL'
  | 'CA';

export interface SourcePos {
  readonly file: string;
  readonly line: number; // 1-based
  readonly col: number; // 1-based
}

export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
  /** Dotted field path inside the document or resource, e.g. `spec.instances[1].port`. */
  readonly field?: string;
  readonly pos?: SourcePos;
  /** The manifest (`Service clinical/his`) or Envoy resource (`Cluster his.clinical|http`) at fault. */
  readonly resource?: string;
}

export type Result<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly Problem[] };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(errors: readonly Problem[]): Result<T> => ({ ok: false, errors });

/** `file:line:col: resource: field: message [CODE]`, leaving out what is unknown. */
export function formatProblem(p: Problem): string {
  const where = p.pos ? `${p.pos.file}:${p.pos.line}:${p.pos.col}: ` : '';
  const what = p.resource ? `${p.resource}: ` : '';
  const field = p.field ? `${p.field}: ` : '';
  return `${where}${what}${field}${p.message} [${p.code}]`;
}

/** Raised only at the edges (CLI, admin API, start-up) to carry problems out; never deep in the core. */
export class ClinimeshError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ClinimeshError';
  }
}
