import { describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../../src/discovery/consul-health.ts';
import {
  aggregateHealth,
  canonicalEndpoints,
  endpointsFromEntries,
  parseHealthEntries,
} from '../../../src/discovery/consul-health.ts';

function entry(
  overrides: { node?: Record<string, unknown>; service?: Record<string, unknown>; checks?: unknown[] } = {},
): unknown {
  return {
    Node: { ID: 'n1', Node: 'node-a', Address: '10.0.0.1', Datacenter: 'dc1', Meta: {}, ...overrides.node },
    Service: {
      ID: 'his-1',
      Service: 'his',
      Tags: ['v1'],
      Address: '10.0.1.1',
      Port: 15001,
      Meta: {},
      Weights: { Passing: 4, Warning: 2 },
      ...overrides.service,
    },
    Checks: overrides.checks ?? [{ CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }],
  };
}

const check = (status: string): HealthCheck => ({ checkId: status, status, serviceId: 'x' });
const map = (...raw: unknown[]) => endpointsFromEntries(parseHealthEntries(raw).entries, 'http');

describe('aggregating Consul checks into one health', () => {
  it('is HEALTHY with all checks passing, or with no checks at all', () => {
    expect(aggregateHealth([check('passing'), check('passing')])).toBe('HEALTHY');
    expect(aggregateHealth([])).toBe('HEALTHY');
  });
  it('is DEGRADED when any check warns and none is critical', () => {
    expect(aggregateHealth([check('passing'), check('warning')])).toBe('DEGRADED');
  });
  it('is UNHEALTHY when any check is critical or in maintenance, whatever the others say', () => {
    expect(aggregateHealth([check('warning'), check('critical'), check('passing')])).toBe('UNHEALTHY');
    expect(aggregateHealth([check('passing'), check('maintenance')])).toBe('UNHEALTHY');
  });
  it('treats a status it does not know as critical, so it is never routed by mistake', () => {
    expect(aggregateHealth([check('bogus')])).toBe('UNHEALTHY');
  });
});

describe('mapping health entries to endpoints', () => {
  it('uses the service address, falling back to the node address', () => {
    expect(map(entry())[0]!.address).toBe('10.0.1.1');
    expect(map(entry({ service: { Address: '' } }))[0]!.address).toBe('10.0.0.1');
  });

  it('names the single port after the manifest port', () => {
    expect(map(entry())[0]!.ports).toEqual({ http: 15001 });
  });

  it('takes locality from service meta over node meta, with the datacenter as region fallback', () => {
    expect(
      map(entry({ node: { Meta: { region: 'eu', zone: 'eu-a' } }, service: { Meta: { zone: 'eu-b' } } }))[0]!
        .locality,
    ).toEqual({ region: 'eu', zone: 'eu-b' });
    expect(map(entry())[0]!.locality).toEqual({ region: 'dc1' });
  });

  it('weights by Weights.Passing when healthy, Weights.Warning when degraded, never below 1', () => {
    expect(map(entry())[0]!.weight).toBe(4);
    expect(map(entry({ checks: [{ CheckID: 'c', Status: 'warning', ServiceID: 'his-1' }] }))[0]!.weight).toBe(
      2,
    );
    expect(
      map(
        entry({
          service: { Weights: { Passing: 1, Warning: 0 } },
          checks: [{ CheckID: 'c', Status: 'warning' }],
        }),
      )[0]!.weight,
    ).toBe(1);
    expect(map(entry({ service: { Weights: undefined } }))[0]!.weight).toBe(1);
  });

  it('keeps tags in order and meta as given', () => {
    const [e] = map(entry({ service: { Tags: ['b', 'a'], Meta: { z: '1', a: '2' } } }));
    expect(e!.tags).toEqual(['b', 'a']);
    expect(e!.meta).toEqual({ a: '2', z: '1' });
  });

  it('disambiguates a service ID used on two nodes as <node>/<id>', () => {
    const list = map(
      entry(),
      entry({ node: { Node: 'node-b', Address: '10.0.0.2' }, service: { Address: '' } }),
      entry({ service: { ID: 'his-2' } }),
    );
    expect(list.map((e) => e.instance)).toEqual(['his-2', 'node-a/his-1', 'node-b/his-1']);
  });

  it('skips entries without a service ID or port, and rejects a body that is not a list', () => {
    const parsed = parseHealthEntries([entry(), entry({ service: { Port: 'x' } }), { Node: {} }]);
    expect(parsed.entries).toHaveLength(1);
    expect(parsed.skipped).toBe(2);
    expect(parseHealthEntries(null).entries).toEqual([]);
    expect(() => parseHealthEntries({ his: [] })).toThrow();
  });
});

describe('canonical endpoint sets', () => {
  it('is the same for the same endpoints in any order and any meta key order', () => {
    const a = map(entry({ service: { Meta: { x: '1', y: '2' } } }), entry({ service: { ID: 'his-2' } }));
    const b = map(entry({ service: { ID: 'his-2' } }), entry({ service: { Meta: { y: '2', x: '1' } } }));
    expect(canonicalEndpoints([...a].reverse())).toBe(canonicalEndpoints(b));
  });
  it('differs when health, weight or address differ', () => {
    const base = canonicalEndpoints(map(entry()));
    expect(canonicalEndpoints(map(entry({ checks: [{ Status: 'warning' }] })))).not.toBe(base);
    expect(canonicalEndpoints(map(entry({ service: { Weights: { Passing: 9, Warning: 1 } } })))).not.toBe(
      base,
    );
    expect(canonicalEndpoints(map(entry({ service: { Address: '10.9.9.9' } })))).not.toBe(base);
  });
});
