// Test helpers for analyze: fixtures read and analyzed as the CLI does, and positions of snippets.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeInvalid, analyzeManifests, type Finding } from '../../../src/analyze/index.ts';
import { loadManifests } from '../../../src/manifest/index.ts';

export const FIXTURES = 'test/fixtures/analyze';

export const fixture = (name: string): string => join(FIXTURES, name);

export async function analyzeFixture(name: string): Promise<Finding[]> {
  const loaded = await loadManifests([fixture(name)]);
  return loaded.ok ? analyzeManifests({ manifests: loaded.value }) : analyzeInvalid(loaded.errors);
}

/** `file:line:col` of the `nth` occurrence of `needle` in a fixture file, 1-based as findings are. */
export function positionIn(name: string, needle: string, nth = 1): string {
  const lines = readFileSync(fixture(name), 'utf8').split('\n');
  let seen = 0;
  for (const [i, line] of lines.entries()) {
    const col = line.indexOf(needle);
    if (col >= 0 && ++seen === nth) return `${fixture(name)}:${i + 1}:${col + 1}`;
  }
  throw new Error(`test bug: ${needle} (#${nth}) not in ${name}`);
}

/** The parts of a finding tests assert on: code, severity, where, resource; never the message. */
export const brief = (f: Finding): { code: string; severity: string; at: string; resource?: string } => ({
  code: f.code,
  severity: f.severity,
  at: 'pos' in f.location ? `${f.location.pos.file}:${f.location.pos.line}:${f.location.pos.col}` : '?',
  ...(f.resource !== undefined && { resource: f.resource }),
});
