// Problems about validated manifests, placed at the field they concern when its position is known.
import type { ErrorCode, Problem, SourcePos } from '../errors.ts';
import { fieldAt } from './field-positions.ts';
import type { Origin } from './types.ts';

/** The field's position if it was read from YAML, else the document's. */
export function fieldPosition(origin: Origin, field: string): SourcePos | undefined {
  const at = fieldAt(origin.fieldPos, field);
  return at ? { file: origin.file, line: at[0], col: at[1] } : origin.pos;
}

export function problemAt(
  origin: Origin,
  resource: string,
  field: string,
  code: ErrorCode,
  message: string,
): Problem {
  const pos = fieldPosition(origin, field);
  return { code, message, field, resource, ...(pos ? { pos } : {}) };
}

/** `emr.yaml:12:7`, for messages that name a second place (the first of two duplicates). */
export function where(origin: Origin, field?: string): string {
  const pos = field === undefined ? origin.pos : fieldPosition(origin, field);
  return pos ? `${pos.file}:${pos.line}:${pos.col}` : origin.file;
}
