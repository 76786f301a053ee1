import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  loadManifests,
  serviceUpstreams,
  type AccessPolicy,
  type Mesh,
  type Service,
} from '../../../src/manifest/index.ts';
import { valueOf } from './helpers.ts';

describe('the example manifests', () => {
  it('load cleanly and pass the cross-document checks', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'AccessPolicy',
      'AccessPolicy',
      'AccessPolicy',
      'AccessPolicy',
      'Mesh',
      'Service',
      'Service',
      'Service',
      'Service',
      'Service',
      'Service',
      'Service',
      'TrafficPolicy',
      'TrafficPolicy',
    ]);
    expect(checkManifestSet(manifests)).toEqual([]);
  });

  it('describe the hospital mesh: EMR calls HIS and imaging, imaging calls HIS', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    const mesh = manifests.find((m): m is Mesh => m.kind === 'Mesh');
    expect(mesh).toMatchObject({ name: 'hospital', trustDomain: 'hospital.local', mtls: { mode: 'STRICT' } });
    const services = new Map(
      manifests.filter((m): m is Service => m.kind === 'Service').map((s) => [s.name, s]),
    );
    expect(services.get('his')?.instances.map((i) => i.name)).toEqual(['his-1', 'his-2']);
    expect((services.get('emr') && serviceUpstreams(services.get('emr')!))?.map((u) => u.service)).toEqual([
      'his',
      'imaging',
    ]);
    expect(
      (services.get('imaging') && serviceUpstreams(services.get('imaging')!))?.map((u) => u.service),
    ).toEqual(['his', 'kafka']);
  });

  it('put imaging events on a three-broker Kafka whose brokers each have their own port', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    const kafka = manifests.find((m): m is Service => m.kind === 'Service' && m.name === 'kafka');
    expect(kafka?.ports.map((p) => [p.name, p.instancePorts])).toEqual([
      ['kafka', { base: 29092, count: 3 }],
      ['controller', { base: 29192, count: 3 }],
    ]);
    expect((kafka && serviceUpstreams(kafka))?.map((u) => `${u.service}:${u.port}`)).toEqual([
      'kafka:kafka',
      'kafka:controller',
    ]);
  });

  it('let HIS accept EMR and imaging on patient paths, imaging accept EMR, and leave EMR open', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    const policies = new Map(
      manifests
        .filter((m): m is AccessPolicy => m.kind === 'AccessPolicy')
        .map((p) => [p.destination.service, p]),
    );
    expect(policies.get('his')?.rules).toEqual([
      {
        from: [{ service: 'emr', namespace: 'clinical' }],
        http: { methods: ['GET', 'POST'], paths: [{ prefix: '/patients/' }, { exact: '/orders' }] },
      },
      {
        from: [{ service: 'imaging', namespace: 'clinical' }],
        http: { methods: ['GET'], paths: [{ prefix: '/patients/' }] },
      },
    ]);
    expect(policies.get('imaging')?.rules).toEqual([{ from: [{ service: 'emr', namespace: 'clinical' }] }]);
    expect(policies.has('emr')).toBe(false);
    const mesh = manifests.find((m): m is Mesh => m.kind === 'Mesh');
    expect(mesh?.authorization).toEqual({ defaultAction: 'ALLOW' });
  });

  it('carry clinical messaging: HIS publishes to RabbitMQ over AMQP, LIS consumes, no one else connects', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    const services = new Map(
      manifests.filter((m): m is Service => m.kind === 'Service').map((s) => [s.name, s]),
    );
    expect(services.get('rabbitmq')?.ports).toEqual([
      { name: 'amqp', port: 15672, targetPort: 5672, protocol: 'tcp' },
    ]);
    for (const client of ['his', 'lis'])
      expect(services.get(client)?.upstreams).toContainEqual({
        service: 'rabbitmq',
        namespace: 'clinical',
        port: 'amqp',
        localPort: 5672,
      });
    const policy = manifests.find(
      (m): m is AccessPolicy => m.kind === 'AccessPolicy' && m.destination.service === 'rabbitmq',
    );
    expect(policy?.rules.flatMap((r) => r.from.map((f) => f.service)).sort()).toEqual(['his', 'lis']);
    expect(policy?.rules.map((r) => r.ports)).toEqual([['amqp']]);
  });

  it('are loaded in sorted path order, each with the position of its document', async () => {
    const manifests = valueOf(await loadManifests(['manifests/examples']));
    const files = manifests.map((m) => m.origin.file);
    expect(files).toEqual([...files].sort());
    for (const m of manifests) expect(m.origin.pos).toMatchObject({ file: m.origin.file, col: 1 });
  });
});
