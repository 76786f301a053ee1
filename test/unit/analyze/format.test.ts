import { describe, expect, it } from 'vitest';
import { findingJson, formatFinding, summaryLine, type Finding } from '../../../src/analyze/index.ts';

const denied: Finding = {
  code: 'CM0007',
  severity: 'warning',
  location: { pos: { file: 'emr.yaml', line: 8, col: 18 } },
  resource: 'Service clinical/emr',
  message: 'calls Service clinical/his, but …',
  fix: 'add { service: emr } to a rule',
};

describe('finding output', () => {
  it('prints file:line:col: severity CODE resource: message (fix: …)', () => {
    expect(formatFinding(denied)).toBe(
      'emr.yaml:8:18: warning CM0007 Service clinical/emr: calls Service clinical/his, but … (fix: add { service: emr } to a rule)',
    );
  });

  it('prints the file alone when no position is known, and "-" when not even that', () => {
    expect(formatFinding({ ...denied, location: { file: 'emr.yaml' } })).toMatch(
      /^emr\.yaml: warning CM0007 /,
    );
    const noResource: Finding = {
      code: 'CM0007',
      severity: 'warning',
      location: {},
      message: 'calls',
      fix: 'f',
    };
    expect(formatFinding(noResource)).toBe('-: warning CM0007: calls (fix: f)');
  });

  it('gives JSON with the position as separate fields', () => {
    expect(findingJson(denied)).toEqual({
      code: 'CM0007',
      severity: 'warning',
      file: 'emr.yaml',
      line: 8,
      col: 18,
      resource: 'Service clinical/emr',
      message: denied.message,
      fix: denied.fix,
    });
  });

  it('sums up by severity', () => {
    expect(summaryLine([])).toBe('no findings');
    expect(summaryLine([denied, { ...denied, severity: 'error' }, denied])).toBe('1 error, 2 warnings');
  });
});
