// Test helpers for manifest tests: documents as text, and the line a snippet sits on.
import type { Problem, Result } from '../../../src/errors.ts';

/** 1-based line of the `nth` line of `text` containing `needle`. */
export function lineOf(text: string, needle: string, nth = 1): number {
  let seen = 0;
  const i = text.split('\n').findIndex((l) => l.includes(needle) && ++seen === nth);
  if (i < 0) throw new Error(`test bug: ${needle} (#${nth}) not in text`);
  return i + 1;
}

export function errorsOf<T>(r: Result<T>): readonly Problem[] {
  if (r.ok) throw new Error('expected problems, got a valid result');
  return r.errors;
}

export function valueOf<T>(r: Result<T>): T {
  if (!r.ok)
    throw new Error(`expected a valid result, got:\n${r.errors.map((e) => JSON.stringify(e)).join('\n')}`);
  return r.value;
}

/** The parts of a problem tests assert on: never the message text. */
export const brief = (p: Problem): { code: string; field?: string; line?: number } => ({
  code: p.code,
  ...(p.field !== undefined && { field: p.field }),
  ...(p.pos && { line: p.pos.line }),
});

export const service = (name: string, body: string): string => `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: clinical }
spec:
${body}`;
