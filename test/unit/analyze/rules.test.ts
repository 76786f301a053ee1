import { describe, expect, it } from 'vitest';
import { analyzeFixture, brief, positionIn } from './helpers.ts';

const PHI_LABEL = 'phi }';

describe('a clean mesh', () => {
  it('has no findings: PHI service with a policy, strict mTLS, audit on, deny by default, callers allowed', async () => {
    expect(await analyzeFixture('clean')).toEqual([]);
  });
});

describe('CM0001 manifests that do not validate', () => {
  it('reports each validation problem as an error at its own position', async () => {
    const file = 'invalid/fail.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      { code: 'CM0001', severity: 'error', at: positionIn(file, '150010'), resource: 'Service clinical/his' },
    ]);
  });
});

describe('CM0002 a PHI service without an AccessPolicy', () => {
  it('is an error at its clinical.data label', async () => {
    const file = 'phi-without-policy/fail.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      {
        code: 'CM0002',
        severity: 'error',
        at: positionIn(file, PHI_LABEL),
        resource: 'Service clinical/his',
      },
    ]);
  });

  it('passes once a policy has it as destination', async () => {
    expect(await analyzeFixture('phi-without-policy/pass.yaml')).toEqual([]);
  });
});

describe('CM0003 a PHI service in a PERMISSIVE mesh', () => {
  it('is an error at the mesh mtls mode', async () => {
    const file = 'phi-permissive/fail.yaml';
    const findings = await analyzeFixture(file);
    expect(findings.map(brief)).toEqual([
      { code: 'CM0003', severity: 'error', at: positionIn(file, 'PERMISSIVE'), resource: 'Mesh hospital' },
    ]);
    // It names the PHI service and where it is marked so.
    expect(findings[0]?.message).toContain(`Service clinical/his (${positionIn(file, PHI_LABEL)})`);
  });

  it('passes with STRICT', async () => {
    expect(await analyzeFixture('phi-permissive/pass.yaml')).toEqual([]);
  });
});

describe('CM0004 a PHI service in a mesh with auditing off', () => {
  it('is an error at audit.enabled', async () => {
    const file = 'phi-audit-off/fail.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      { code: 'CM0004', severity: 'error', at: positionIn(file, 'false'), resource: 'Mesh hospital' },
    ]);
  });

  it('passes with auditing on', async () => {
    expect(await analyzeFixture('phi-audit-off/pass.yaml')).toEqual([]);
  });
});

describe('CM0005 a mesh that allows by default while a service handles PHI', () => {
  it('is a warning at authorization.defaultAction', async () => {
    const file = 'phi-default-allow/fail.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      { code: 'CM0005', severity: 'warning', at: positionIn(file, 'ALLOW'), resource: 'Mesh hospital' },
    ]);
  });

  it('is a warning at the service label when no Mesh manifest exists (the built-in mesh allows)', async () => {
    const file = 'phi-default-allow/fail-built-in-mesh.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      {
        code: 'CM0005',
        severity: 'warning',
        at: positionIn(file, PHI_LABEL),
        resource: 'Service clinical/his',
      },
    ]);
  });

  it('passes with DENY', async () => {
    expect(await analyzeFixture('phi-default-allow/pass.yaml')).toEqual([]);
  });
});

describe('CM0006 an AccessPolicy naming a service that does not exist', () => {
  it('is an error at the destination and at each unknown caller, reported once (not also as CM0001)', async () => {
    const file = 'policy-unknown-service/fail.yaml';
    const findings = await analyzeFixture(file);
    const policy = 'AccessPolicy clinical/his-callers';
    expect(findings.map(brief)).toEqual([
      // his itself now has no policy
      {
        code: 'CM0002',
        severity: 'error',
        at: positionIn(file, PHI_LABEL),
        resource: 'Service clinical/his',
      },
      { code: 'CM0006', severity: 'error', at: positionIn(file, 'hiss'), resource: policy },
      { code: 'CM0006', severity: 'error', at: positionIn(file, 'emrr'), resource: policy },
    ]);
    expect(findings[1]?.message).toContain('"his"');
  });

  it('passes when both exist', async () => {
    expect(await analyzeFixture('policy-unknown-service/pass.yaml')).toEqual([]);
  });
});

describe("CM0007 an upstream the destination's policies do not let the caller call", () => {
  it('is a warning at the upstream when the policies list other callers only', async () => {
    const file = 'upstream-denied/fail.yaml';
    const findings = await analyzeFixture(file);
    expect(findings.map(brief)).toEqual([
      {
        code: 'CM0007',
        severity: 'warning',
        at: positionIn(file, 'his, port: http'),
        resource: 'Service clinical/emr',
      },
    ]);
    expect(findings[0]?.fix).toContain('{ service: emr, namespace: clinical }');
  });

  it('is a warning for a tcp port that only rules with http conditions name the caller in', async () => {
    const file = 'upstream-denied/fail-tcp.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      {
        code: 'CM0007',
        severity: 'warning',
        at: positionIn(file, 'his, port: hl7'),
        resource: 'Service clinical/emr',
      },
    ]);
  });

  it('is a warning for a port the rules that list the caller do not name', async () => {
    const file = 'upstream-denied/fail-ports.yaml';
    const findings = await analyzeFixture(file);
    expect(findings.map(brief)).toEqual([
      {
        code: 'CM0007',
        severity: 'warning',
        at: positionIn(file, 'his, port: hl7'),
        resource: 'Service clinical/emr',
      },
    ]);
    expect(findings[0]?.fix).toContain('add hl7 to the ports');
  });

  it('is a warning for a destination without policies in a mesh that denies by default', async () => {
    const file = 'upstream-denied/fail-no-policy.yaml';
    expect((await analyzeFixture(file)).map(brief)).toEqual([
      {
        code: 'CM0007',
        severity: 'warning',
        at: positionIn(file, 'lab, port: http'),
        resource: 'Service clinical/emr',
      },
    ]);
  });

  it('passes when a rule lets the caller in', async () => {
    expect(await analyzeFixture('upstream-denied/pass.yaml')).toEqual([]);
  });
});

describe('several rules over one state', () => {
  it('reports every finding, sorted by file and position', async () => {
    const findings = (await analyzeFixture('state')).map(brief);
    expect(findings.map((f) => f.code)).toEqual(['CM0007', 'CM0003', 'CM0005', 'CM0004']);
    expect(findings[1]?.at).toBe(positionIn('state/mesh.yaml', 'PERMISSIVE'));
  });
});
